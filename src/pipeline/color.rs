//! ICC colour management and linear-light conversion (in progress).
