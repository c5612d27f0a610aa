"""Pure statistics over arrays: drift statistics, performance metrics equal to scikit-learn's, and
exact order statistics over partitions. No database, no pandas, no clock."""
