//! # matgrad-layers
//!
//! Structured layers built on `matgrad-engine` and `matgrad-spectral`. So far:
//! - [`o2p`]: second-order pooling with the log-Euclidean map (DeepO2P);
//! - [`ncut_projector`]: the normalized-cuts projector layer, and [`ncut_gaussian`], its
//!   Gaussian-affinity form;
//! - second-order pooling pieces: [`covariance_pool`], [`max_outer_pool`], [`triu_vec`],
//!   [`power_normalize`] and the module [`SecondOrderPooling`];
//! - residual-structured transforms `W = S(θ) + R` ([`structured`]): [`cayley`],
//!   [`expm_skew`], [`householder_product`], [`diag_low_rank`], [`spectral_normalize`], the
//!   layer [`StructuredLinear`] and its diagnostics;
//! - [`train`]: parameters, modules, losses, optimizers, minibatches, checkpoints.
//!
//! - convolution on the channels × (images·pixels) layout: [`conv2d`], [`im2col`], pooling;
//!   [`crelu`] with the pairing analysis; analytic kernel banks ([`gabor_bank`], [`log_bank`],
//!   [`gaussian_derivative_bank`]) mixed with learned kernels in an [`AnalyticBank`];
//!   weighted convolution [`weighted_conv2d`] (`K ∘ αβᵀ`, [`tied_density`]) and the DIRECT-L
//!   optimiser [`direct_l`] for its density.

#![warn(missing_docs)]

mod acl;
mod conv2d;
mod crelu;
mod direct;
mod error;
mod ncut;
mod ncut_gaussian;
mod o2p;
mod o2p_batch;
mod pooling;
pub mod specs;
pub mod structured;
pub mod train;
mod wconv;

pub use acl::{
    gabor_bank, gaussian_derivative_bank, kernel_grid, log_bank, tile_kernels, AnalyticBank,
    AnalyticParams, Family, KernelRow,
};
pub use conv2d::{
    avg_pool2d, col2im, conv2d, global_avg_pool, im2col, max_pool2d, output_maps, FeatureMaps,
    Window,
};
pub use crelu::{crelu, gaussian_pairing, histogram, pairing};
pub use direct::{direct_l, DirectOptions, DirectResult, DirectStop, Selection};
pub use error::{Error, LayerError, Result};
pub use ncut::ncut_projector;
pub use ncut_gaussian::{ncut_gaussian, NCUT_DEGREE_RTOL};
pub use o2p::o2p;
pub use o2p_batch::{o2p_batch, triu_rows};
pub use pooling::{
    covariance_pool, max_outer_pool, power_normalize, triu_vec, Pool, SecondOrderPooling,
};
pub use structured::{
    cayley, diag_low_rank, expm_skew, householder_product, spectral_normalize, Residual, Structure,
    StructuredLinear,
};
pub use wconv::{tied_density, weighted_conv2d, weighted_kernels};
