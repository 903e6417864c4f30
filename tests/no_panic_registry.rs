//! No panic from any registered op on user data, with the op table taken from the registry
//! (so a newly registered op is covered without touching this file): random shapes
//! (matching or not, zero-sized included), both dtypes, values that are zero, identity,
//! rank-deficient, asymmetric or huge; the forward pass, the VJP, the JVP and the HVP must
//! each return Ok or Err — never panic.

use matgrad::engine::spec::Params;
use matgrad::engine::testing::{complex_matrix, real_matrix};
use matgrad::engine::{DType, Tape, Value};
use proptest::prelude::*;

fn value(dtype: DType, m: usize, n: usize, seed: u64, kind: u8) -> Value {
    let v = match dtype {
        DType::F64 => real_matrix(m, n, seed),
        DType::C64 => complex_matrix(m, n, seed),
    };
    match kind % 6 {
        0 => v,
        1 => Value::zeros(dtype, m, n),
        2 => Value::identity(dtype, m.min(n)),
        3 if m == n => v.hermitian_part(),
        4 => v.axpy(1e150, &v).unwrap_or(v),
        _ => v.axpy(1.0, &v).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn registered_ops_never_panic(k in 0usize..1000, m in 0usize..4, n in 0usize..4, p in 0usize..4, q in 0usize..4,
                                  complex in any::<bool>(), kind in any::<u8>(), kind2 in any::<u8>(), seed in any::<u64>()) {
        let reg = matgrad::registry();
        let names = reg.names();
        let spec = reg.get(names[k % names.len()]).unwrap();
        let params = Params::defaults(spec);
        let dtype = if complex { DType::C64 } else { DType::F64 };
        let shapes = [(m, n), (p, q), (n, p)];
        let tape = Tape::new();
        let vars: Vec<_> = spec
            .inputs
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let (r, c) = shapes[i % 3];
                tape.leaf(value(dtype, r, c, seed ^ i as u64, if i == 0 { kind } else { kind2 })).unwrap()
            })
            .collect();
        if let Ok(outs) = spec.call(&vars, &params) {
            let cts: Vec<Value> = outs
                .iter()
                .map(|o| value(o.dtype(), o.shape().0, o.shape().1, seed ^ 7, 0))
                .collect();
            let _ = tape.vjp(&outs, &cts, &vars);
            let tans: Vec<Value> = vars
                .iter()
                .map(|v| value(v.dtype(), v.shape().0, v.shape().1, seed ^ 9, 0))
                .collect();
            let _ = tape.jvp(&vars, &tans, &outs);
            if let Ok(cvars) = cts.into_iter().map(|c| tape.constant(c)).collect::<Result<Vec<_>, _>>() {
                if let Ok(gs) = tape.vjp_graph(&outs, &cvars, &vars) {
                    let _ = tape.jvp(&vars, &tans, &gs);
                }
            }
        }
    }
}
