//! Metrics: accuracy, balanced accuracy, macro F1, ROC AUC, log loss, R², RMSE.
