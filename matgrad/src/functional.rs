//! Function-style entry points on a fresh tape (JAX's style): [`grad`], [`vjp`], [`jvp`],
//! [`hvp`], and dense [`jacobian`] and [`hessian`] for small problems (real and complex;
//! complex entries count as two real coordinates).

pub use crate::engine::{grad, hessian, hvp, jacobian, jvp, vjp};
