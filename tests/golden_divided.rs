//! Divided differences against 50-digit references (`tests/data/golden_divided.json`,
//! made by `tests/data/golden_divided.py`): log, exp, sqrt, integer and fractional powers
//! and two user functions, at ties, near-ties from 1e-15 to 1e-2, clusters around 0 and
//! at ±1e3, negative points, and well-separated points.
//!
//! The bound is the one the docs of `matgrad::spectral::divided` state: absolute error at
//! most `C·ε·s`, with `s` the larger of the reference and the derivative at the points
//! (`|f′|` for first order, `|f″|/2` for second order) plus the next derivative times the
//! largest |point| (a quadrature node between two doubles near x carries ε|x| of rounding).

use std::rc::Rc;

use matgrad::spectral::SymFn;
use serde_json::Value as Json;

/// First differences: measured ≤ 3.3ε·s over the table; 8 leaves room for libm
/// differences between platforms while failing any cancellation (an unguarded quotient at
/// a 1e-13 gap is off by ≈1e3·ε·s, at a tie by ≈1/ε).
const C1: f64 = 8.0;
/// Second differences go through two first differences and a quadrature: measured ≤ 10ε·s;
/// 32 for the same reason.
const C2: f64 = 32.0;

fn func(name: &str) -> SymFn {
    match name {
        "log" => SymFn::Log,
        "exp" => SymFn::Exp,
        "sqrt" => SymFn::Sqrt,
        "custom_exp" => SymFn::Custom {
            name: "custom_exp",
            f: Rc::new(f64::exp),
            df: Rc::new(f64::exp),
            d2f: Some(Rc::new(f64::exp)),
        },
        "custom_sin" => SymFn::Custom {
            name: "custom_sin",
            f: Rc::new(f64::sin),
            df: Rc::new(f64::cos),
            d2f: Some(Rc::new(|x: f64| -x.sin())),
        },
        p if p.starts_with("pow") => SymFn::Pow(p[3..].parse().unwrap()),
        other => panic!("unknown function {other}"),
    }
}

fn ratio(err: f64, bound: f64) -> f64 {
    if err == 0.0 {
        0.0
    } else {
        err / bound
    }
}

fn num(j: &Json) -> f64 {
    j.as_str().unwrap().parse().unwrap()
}

#[test]
fn divided_differences_match_50_digit_references() {
    let data: Json =
        serde_json::from_str(include_str!("data/golden_divided.json")).expect("valid JSON");
    let mut worst1: (f64, String) = (0.0, String::new());
    let mut failures = Vec::new();
    for c in data["first"].as_array().unwrap() {
        let f = func(c["f"].as_str().unwrap());
        let (a, b) = (num(&c["a"]), num(&c["b"]));
        let (want, scale) = (num(&c["ref"]), num(&c["scale"]) + num(&c["next"]));
        let got = f.dd1(a, b);
        let r = ratio((got - want).abs(), f64::EPSILON * scale);
        let label = format!("{}[{a:e}, {b:e}] = {got:e}, want {want:e}", c["f"]);
        if r.is_nan() || r > C1 {
            failures.push(format!("{label}: {r:.1}ε·s"));
        }
        if r > worst1.0 {
            worst1 = (r, label);
        }
    }
    let mut worst2: (f64, String) = (0.0, String::new());
    for c in data["second"].as_array().unwrap() {
        let f = func(c["f"].as_str().unwrap());
        let x: Vec<f64> = c["x"].as_array().unwrap().iter().map(num).collect();
        let (want, scale) = (num(&c["ref"]), num(&c["scale"]) + num(&c["next"]));
        let got = f
            .dd2(x[0], x[1], x[2])
            .expect("f″ is given for every function here");
        let r = ratio((got - want).abs(), f64::EPSILON * scale);
        let label = format!(
            "{}[{:e}, {:e}, {:e}] = {got:e}, want {want:e}",
            c["f"], x[0], x[1], x[2]
        );
        if r.is_nan() || r > C2 {
            failures.push(format!("{label}: {r:.1}ε·s"));
        }
        if r > worst2.0 {
            worst2 = (r, label);
        }
    }
    println!("worst first: {:.2}ε·s at {}", worst1.0, worst1.1);
    println!("worst second: {:.2}ε·s at {}", worst2.0, worst2.1);
    assert!(
        failures.is_empty(),
        "{} of the references missed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
