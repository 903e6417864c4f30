//! Shared by the golden-value tests: decoding the JSON matrices the scripts write.

use faer::Mat;
use matgrad::engine::{Value, C64};
use serde_json::Value as Json;

/// `{"re": [[…]], "im": [[…]]}` (im optional) into a Value.
pub fn decode(j: &Json) -> Value {
    let rows = |k: &str| -> Option<Vec<Vec<f64>>> {
        j.get(k).map(|v| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap())
                        .collect()
                })
                .collect()
        })
    };
    let re = rows("re").unwrap();
    let (m, n) = (re.len(), re[0].len());
    match rows("im") {
        None => Value::Real(Mat::from_fn(m, n, |i, k| re[i][k])),
        Some(im) => Value::Complex(Mat::from_fn(m, n, |i, k| C64::new(re[i][k], im[i][k]))),
    }
}
