"""The pure transform core: normalize, dedupe, fold, finalize. No Azure, clock or network."""
