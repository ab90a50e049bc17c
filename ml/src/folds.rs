//! Splitters: KFold, StratifiedKFold, RepeatedStratifiedKFold, GroupKFold.
