//! matgrad-spectral: spectral ops (eigh, svd, eig, matrix functions, projectors). Work in progress: see issue 3.
#![warn(missing_docs)]
