//! Diagnostics for deep (structured) networks, as library functions:
//! - [`jacobian_singular_values`] of the end-to-end input–output map at one input (through
//!   the engine's dense [`matgrad_engine::jacobian`] and [`matgrad_spectral::svdvals`]),
//!   and [`condition_number`];
//! - [`grad_norms`]: the gradient norm of every parameter, and [`layer_grad_norms`] summed
//!   per layer (the name up to its first '.');
//! - [`sensitivity`]: the mean ratio `‖f(x + δ) − f(x)‖/‖δ‖` over random perturbations δ of
//!   a given size;
//! - ‖R‖/‖S‖ per layer is [`super::StructuredLinear::norms`].

use matgrad_engine::{jacobian, Tape, Value};
use matgrad_spectral::svdvals;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::Result;
use crate::train::{Module, ParamSet};

/// Singular values (descending) of the Jacobian of `x ↦ net(x)` at one input `x` (1×n, a
/// single sample), with the parameters held constant.
///
/// # Errors
/// Errors of the network or of the SVD.
pub fn jacobian_singular_values(net: &dyn Module, ps: &ParamSet, x: &Value) -> Result<Vec<f64>> {
    let (_, j) = jacobian(
        |t, v| {
            let p = ps.bind_constant(t)?;
            net.forward(&p, v[0])
        },
        std::slice::from_ref(x),
    )?;
    let tape = Tape::new();
    let s = svdvals(tape.constant(j[0].clone())?)?.value();
    let s = s.as_real().expect("singular values are real");
    Ok((0..s.nrows()).map(|i| s[(i, 0)]).collect())
}

/// `σ_max/σ_min` of a list of singular values (∞ when the smallest is 0, NaN when empty).
pub fn condition_number(sv: &[f64]) -> f64 {
    match (sv.first(), sv.last()) {
        (Some(&hi), Some(&lo)) => {
            if lo == 0.0 {
                f64::INFINITY
            } else {
                hi / lo
            }
        }
        _ => f64::NAN,
    }
}

/// `(name, ‖g‖_F)` for every parameter, in the set's order (`grads` as from
/// [`crate::train::Bound::grad`]).
pub fn grad_norms(ps: &ParamSet, grads: &[Value]) -> Vec<(String, f64)> {
    ps.iter()
        .zip(grads)
        .map(|((name, _), g)| (name.to_string(), g.norm()))
        .collect()
}

/// Gradient norms summed in quadrature per layer, the layer being the parameter name up
/// to its first '.', in order of first appearance.
pub fn layer_grad_norms(ps: &ParamSet, grads: &[Value]) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for (name, g) in grad_norms(ps, grads) {
        let layer = name.split('.').next().unwrap_or(&name).to_string();
        match out.iter_mut().find(|(l, _)| *l == layer) {
            Some((_, s)) => *s = s.hypot(g),
            None => out.push((layer, g)),
        }
    }
    out
}

/// Mean of `‖net(x + δ) − net(x)‖_F / ‖δ‖_F` over `samples` Gaussian perturbations δ scaled
/// to `‖δ‖_F = size` (seeded): the finite-size amplification of input noise (for small
/// `size` it tends to the RMS singular value of the Jacobian along random directions).
///
/// # Errors
/// Errors of the network; `size` not positive; no samples.
pub fn sensitivity(
    net: &dyn Module,
    ps: &ParamSet,
    x: &Value,
    size: f64,
    samples: usize,
    seed: u64,
) -> Result<f64> {
    if !(size > 0.0 && size.is_finite()) || samples == 0 {
        return Err(matgrad_engine::Error::InvalidArgument {
            op: "sensitivity",
            message: format!(
                "need size > 0 and samples ≥ 1, got size = {size}, samples = {samples}"
            ),
        });
    }
    let xr = x.as_real().ok_or(matgrad_engine::Error::InvalidArgument {
        op: "sensitivity",
        message: "the input must be real".into(),
    })?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let tape = Tape::new();
    let p = ps.bind_constant(&tape)?;
    let y0 = net.forward(&p, tape.constant(x.clone())?)?.value();
    let mut total = 0.0;
    for _ in 0..samples {
        let d = faer::Mat::from_fn(xr.nrows(), xr.ncols(), |_, _| {
            let z: f64 = StandardNormal.sample(&mut rng);
            z
        });
        let scale = size / d.norm_l2();
        let xp = faer::Mat::from_fn(xr.nrows(), xr.ncols(), |i, j| {
            xr[(i, j)] + scale * d[(i, j)]
        });
        let tape = Tape::new();
        let p = ps.bind_constant(&tape)?;
        let y = net.forward(&p, tape.constant(Value::Real(xp))?)?.value();
        total += tape
            .constant(y)?
            .sub(tape.constant(y0.clone())?)?
            .value()
            .norm()
            / size;
    }
    Ok(total / samples as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structured::{Residual, Structure, StructuredLinear};
    use crate::train::{Activation, Init, Linear, Sequential};

    #[test]
    fn linear_network_jacobian_is_the_weight() {
        let mut ps = ParamSet::new(3);
        let l = Linear::new(&mut ps, "fc", 3, 3, Init::Normal(1.0), false).unwrap();
        let net = Sequential::new().then(l);
        let x = Value::Real(faer::mat![[0.3, -1.0, 2.0]]);
        let sv = jacobian_singular_values(&net, &ps, &x).unwrap();
        let w = ps.values()[0].as_real().unwrap();
        let want = w.singular_values().unwrap();
        for (a, b) in sv.iter().zip(&want) {
            assert!((a - b).abs() < 1e-13 * want[0]);
        }
        assert!((condition_number(&sv) - want[0] / want[2]).abs() < 1e-10 * want[0] / want[2]);
        // a linear map's sensitivity is independent of the perturbation size
        let s1 = sensitivity(&net, &ps, &x, 1e-3, 20, 0).unwrap();
        let s2 = sensitivity(&net, &ps, &x, 1.0, 20, 0).unwrap();
        assert!((s1 - s2).abs() < 1e-9 * s1);
        assert!(s1 <= want[0] * (1.0 + 1e-12) && s1 >= want[2] * (1.0 - 1e-12));
    }

    #[test]
    fn orthogonal_layers_at_the_origin_have_condition_one() {
        // tanh'(0) = 1 and orthogonal weights: the Jacobian at x = 0 is orthogonal
        let mut ps = ParamSet::new(4);
        let mut net = Sequential::new();
        for i in 0..6 {
            net.push(
                StructuredLinear::new(
                    &mut ps,
                    &format!("l{i}"),
                    4,
                    Structure::Cayley,
                    Residual::LowRank { rank: 1 },
                    false,
                )
                .unwrap(),
            );
            net.push(Activation::Tanh);
        }
        let sv =
            jacobian_singular_values(&net, &ps, &Value::zeros(matgrad_engine::DType::F64, 1, 4))
                .unwrap();
        assert!((condition_number(&sv) - 1.0).abs() < 1e-12, "{sv:?}");
        // layer gradient norms group by the name's prefix
        let g: Vec<Value> = ps.values().to_vec();
        let per = layer_grad_norms(&ps, &g);
        assert_eq!(per.len(), 6);
        assert_eq!(per[0].0, "l0");
        let direct = grad_norms(&ps, &g);
        let l0: f64 = direct
            .iter()
            .filter(|(n, _)| n.starts_with("l0."))
            .map(|(_, v)| v * v)
            .sum();
        assert!((per[0].1 - l0.sqrt()).abs() < 1e-14);
    }

    #[test]
    fn errors() {
        let ps = ParamSet::new(0);
        let net = Sequential::new();
        let x = Value::Real(faer::mat![[1.0]]);
        assert!(sensitivity(&net, &ps, &x, 0.0, 3, 0).is_err());
        assert!(sensitivity(&net, &ps, &x, 1.0, 0, 0).is_err());
        assert!(condition_number(&[]).is_nan());
        assert_eq!(condition_number(&[2.0, 0.0]), f64::INFINITY);
    }
}
