//! `direct_l` against scipy's compiled DIRECT-L (`scipy.optimize.direct(locally_biased=True)`)
//! on standard test functions: with the same options (budget, iteration limit, tolerances) it
//! must stop after the same number of evaluations and iterations, for the same reason, at the
//! same best point — under both selection rules: `Selection::ScipyQuiet` against scipy as
//! users call it, `Selection::Gablonsky` against the same code with its log file on (the
//! paper's rule; see `Selection`). Data and script: `tests/data/golden_direct.{json,py}`.

use matgrad::layers::{direct_l, DirectOptions, DirectStop, Selection};
use serde_json::Value as Json;
use std::f64::consts::PI;

/// The test functions are evaluated by numpy in the reference and by Rust here: the values
/// agree to a few ulps, and DIRECT's decisions (comparisons of values) only flip on exact
/// ties, which these functions do not produce at the sampled points. The best point is a
/// centre of the same rectangle, computed with the same operations: 1e-12 of the box width.
const POINT_TOL: f64 = 1e-12;
/// Best values: a few ulps of max(1, |f|).
const VALUE_RTOL: f64 = 1e-12;

fn function(name: &str) -> fn(&[f64]) -> f64 {
    match name {
        "sphere_shifted" => |x| x.iter().map(|v| (v - 0.3) * (v - 0.3)).sum(),
        "branin" => |x| {
            let (b, c, t) = (5.1 / (4.0 * PI * PI), 5.0 / PI, 1.0 / (8.0 * PI));
            (x[1] - b * x[0] * x[0] + c * x[0] - 6.0).powi(2) + 10.0 * (1.0 - t) * x[0].cos() + 10.0
        },
        "six_hump_camel" => |x| {
            let (a, b) = (x[0], x[1]);
            (4.0 - 2.1 * a * a + a.powi(4) / 3.0) * a * a + a * b + (-4.0 + 4.0 * b * b) * b * b
        },
        "goldstein_price" => |x| {
            let (a, b) = (x[0], x[1]);
            let p = 1.0
                + (a + b + 1.0).powi(2)
                    * (19.0 - 14.0 * a + 3.0 * a * a - 14.0 * b + 6.0 * a * b + 3.0 * b * b);
            let q = 30.0
                + (2.0 * a - 3.0 * b).powi(2)
                    * (18.0 - 32.0 * a + 12.0 * a * a + 48.0 * b - 36.0 * a * b + 27.0 * b * b);
            p * q
        },
        "rosenbrock" => |x| {
            x.windows(2)
                .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
                .sum()
        },
        "styblinski_tang" => |x| {
            0.5 * x
                .iter()
                .map(|v| v.powi(4) - 16.0 * v * v + 5.0 * v)
                .sum::<f64>()
        },
        "rastrigin" => |x| {
            10.0 * x.len() as f64
                + x.iter()
                    .map(|v| v * v - 10.0 * (2.0 * PI * v).cos())
                    .sum::<f64>()
        },
        "hartmann3" => |x| {
            let a = [
                [3.0, 10.0, 30.0],
                [0.1, 10.0, 35.0],
                [3.0, 10.0, 30.0],
                [0.1, 10.0, 35.0],
            ];
            let p = [
                [0.3689, 0.1170, 0.2673],
                [0.4699, 0.4387, 0.7470],
                [0.1091, 0.8732, 0.5547],
                [0.0381, 0.5743, 0.8828],
            ];
            let alpha = [1.0, 1.2, 3.0, 3.2];
            -(0..4)
                .map(|i| {
                    alpha[i]
                        * (-(0..3)
                            .map(|j| a[i][j] * (x[j] - p[i][j]).powi(2))
                            .sum::<f64>())
                        .exp()
                })
                .sum::<f64>()
        },
        "shekel5" => |x| {
            let a = [[4.0; 4], [1.0; 4], [8.0; 4], [6.0; 4], [3.0, 7.0, 3.0, 7.0]];
            let c = [0.1, 0.2, 0.2, 0.4, 0.4];
            -(0..5)
                .map(|i| 1.0 / ((0..4).map(|j| (x[j] - a[i][j]).powi(2)).sum::<f64>() + c[i]))
                .sum::<f64>()
        },
        other => panic!("unknown test function {other}"),
    }
}

fn floats(v: &Json) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn direct_l_matches_scipy() {
    let data: Json = serde_json::from_str(include_str!("data/golden_direct.json")).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 12);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let f = function(case["function"].as_str().unwrap());
        let (lo, hi) = (floats(&case["lower"]), floats(&case["upper"]));
        let o = &case["options"];
        let mut opts = DirectOptions::default();
        if let Some(v) = o.get("maxfun") {
            opts.max_evals = Some(v.as_u64().unwrap() as usize);
        }
        if let Some(v) = o.get("maxiter") {
            opts.max_iter = v.as_u64().unwrap() as usize;
        }
        if let Some(v) = o.get("len_tol") {
            opts.len_tol = v.as_f64().unwrap();
        }
        if let Some(v) = o.get("eps") {
            opts.eps = v.as_f64().unwrap();
        }
        if let Some(v) = o.get("f_min") {
            opts.f_min = Some(v.as_f64().unwrap());
        }
        if let Some(v) = o.get("f_min_rtol") {
            opts.f_min_rtol = v.as_f64().unwrap();
        }
        for (key, selection) in [
            ("scipy", Selection::ScipyQuiet),
            ("gablonsky", Selection::Gablonsky),
        ] {
            let opts = DirectOptions {
                selection,
                ..opts.clone()
            };
            let name = format!("{name} ({key})");
            let r = direct_l(|x| Ok(f(x)), &lo, &hi, &opts).unwrap();
            compare(&name, &r, &case[key], &lo, &hi);
        }
    }
}

fn compare(name: &str, r: &matgrad::layers::DirectResult, case: &Json, lo: &[f64], hi: &[f64]) {
    // scipy's status codes: 1 maxfun, 2 maxiter, 3 f_min, 4 vol_tol, 5 len_tol
    let stop = match case["status"].as_i64().unwrap() {
        1 => DirectStop::MaxEvals,
        2 => DirectStop::MaxIter,
        3 => DirectStop::FMin,
        4 => DirectStop::VolTol,
        5 => DirectStop::LenTol,
        s => panic!("{name}: unexpected status {s}"),
    };
    assert_eq!(r.stop, stop, "{name}");
    assert_eq!(
        r.evals as u64,
        case["nfev"].as_u64().unwrap(),
        "{name}: evaluations"
    );
    assert_eq!(
        r.iterations as u64,
        case["nit"].as_u64().unwrap(),
        "{name}: iterations"
    );
    let want = floats(&case["x"]);
    for i in 0..want.len() {
        assert!(
            (r.x[i] - want[i]).abs() <= POINT_TOL * (hi[i] - lo[i]),
            "{name}: x[{i}] = {} vs scipy {}",
            r.x[i],
            want[i]
        );
    }
    let fun = case["fun"].as_f64().unwrap();
    assert!(
        (r.fun - fun).abs() <= VALUE_RTOL * fun.abs().max(1.0),
        "{name}: {} vs {fun}",
        r.fun
    );
}
