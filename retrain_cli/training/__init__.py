"""Retraining: one retrain from slot to registered version, its evaluation, the gate, run history
and the slots that bound concurrent retrains."""
