"""Model families: LightGBM, PyTorch LSTM and Transformer, and ensembles of them, behind one small
interface (`base.Trainer`); `families` makes or loads one by its type."""
