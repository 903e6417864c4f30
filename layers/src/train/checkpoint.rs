//! Checkpoints: a [`ParamSet`] saved to and loaded from a `.safetensors` file, the format
//! PyTorch (`safetensors.torch.load_file`) and the Rust ML crates read. Real parameters are
//! float64 tensors of shape `[m, n]`; complex ones `[m, n, 2]` (real and imaginary parts,
//! PyTorch's `view_as_real` layout). The order of the set is kept in the metadata
//! (`param.0`, `param.1`, …). Writes are atomic (a temporary file, then a rename).
//!
//! ```
//! use matgrad_layers::train::{checkpoint, Init, ParamSet};
//! # fn main() -> Result<(), matgrad_engine::Error> {
//! let dir = std::env::temp_dir().join(format!("mg-ckpt-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let mut ps = ParamSet::new(1);
//! ps.add("layer.w", 3, 2, Init::HeNormal)?;
//! checkpoint::save(&ps, dir.join("model.safetensors"))?;
//! let back = checkpoint::load(dir.join("model.safetensors"))?;
//! assert_eq!(back.values()[0].rel_diff(&ps.values()[0])?, 0.0);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::Path;

use matgrad_engine::{Error, Result, Value, C64};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::params::ParamSet;

fn file_err(path: &Path, message: impl Into<String>) -> Error {
    Error::File {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn bytes_of(v: &Value) -> (Vec<usize>, Vec<u8>) {
    let (m, n) = v.shape();
    let mut out = Vec::new();
    match v {
        Value::Real(a) => {
            for i in 0..m {
                for j in 0..n {
                    out.extend(a[(i, j)].to_le_bytes());
                }
            }
            (vec![m, n], out)
        }
        Value::Complex(a) => {
            for i in 0..m {
                for j in 0..n {
                    out.extend(a[(i, j)].re.to_le_bytes());
                    out.extend(a[(i, j)].im.to_le_bytes());
                }
            }
            (vec![m, n, 2], out)
        }
    }
}

/// Saves `ps` to `path`.
///
/// # Errors
/// [`Error::File`] when the file cannot be written.
pub fn save(ps: &ParamSet, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> = ps
        .iter()
        .map(|(name, v)| {
            let (shape, data) = bytes_of(v);
            (name.to_string(), shape, data)
        })
        .collect();
    let views = encoded
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(Dtype::F64, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| file_err(path, format!("cannot encode {name:?}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "matgrad ParamSet".to_string());
    for (k, name) in ps.names().iter().enumerate() {
        meta.insert(format!("param.{k}"), name.clone());
    }
    let bytes = safetensors::serialize(views, Some(meta))
        .map_err(|e| file_err(path, format!("cannot serialise: {e}")))?;
    let tmp = path.with_extension("safetensors.matgrad-tmp");
    std::fs::write(&tmp, &bytes).map_err(|e| file_err(path, format!("cannot write: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        file_err(path, format!("cannot move into place: {e}"))
    })
}

fn decode(path: &Path, name: &str, t: &TensorView<'_>) -> Result<Value> {
    if t.dtype() != Dtype::F64 {
        return Err(file_err(
            path,
            format!("tensor {name:?} is {:?}; matgrad reads float64", t.dtype()),
        ));
    }
    let f = |k: usize| {
        let b: [u8; 8] = t.data()[8 * k..8 * k + 8].try_into().expect("8 bytes");
        f64::from_le_bytes(b)
    };
    Ok(match t.shape() {
        [m, n] => Value::Real(faer::Mat::from_fn(*m, *n, |i, j| f(i * n + j))),
        [m, n, 2] => Value::Complex(faer::Mat::from_fn(*m, *n, |i, j| {
            C64::new(f(2 * (i * n + j)), f(2 * (i * n + j) + 1))
        })),
        other => {
            return Err(file_err(
                path,
                format!("tensor {name:?} has shape {other:?}; expected [m, n] or [m, n, 2]"),
            ))
        }
    })
}

/// Loads a parameter set saved by [`save`] (or any safetensors file of float64 `[m, n]` /
/// `[m, n, 2]` tensors, in name order when it has no matgrad metadata). The loaded set's
/// random stream starts from seed 0.
///
/// # Errors
/// [`Error::File`] for an unreadable or malformed file.
pub fn load(path: impl AsRef<Path>) -> Result<ParamSet> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| file_err(path, format!("not a safetensors file: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| file_err(path, format!("bad header: {e}")))?;
    let mut names: Vec<String> = match meta.metadata() {
        Some(m) if m.contains_key("param.0") => (0..)
            .map_while(|k| m.get(&format!("param.{k}")).cloned())
            .collect(),
        _ => st.names().into_iter().map(str::to_string).collect(),
    };
    if names.len() != st.len() {
        names = st.names().into_iter().map(str::to_string).collect();
        names.sort();
    }
    let mut ps = ParamSet::new(0);
    for name in names {
        let t = st
            .tensor(&name)
            .map_err(|e| file_err(path, format!("tensor {name:?}: {e}")))?;
        let v = decode(path, &name, &t)?;
        ps.add_value(&name, v)?;
    }
    Ok(ps)
}

/// Loads the values saved in `path` into `ps`: the same names, shapes and dtypes.
///
/// # Errors
/// [`Error::File`] for a file that does not match `ps`.
pub fn load_into(ps: &mut ParamSet, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let loaded = load(path)?;
    if loaded.len() != ps.len() {
        return Err(file_err(
            path,
            format!(
                "holds {} parameters, the set has {}",
                loaded.len(),
                ps.len()
            ),
        ));
    }
    let pairs: Vec<(usize, Value)> = ps
        .names()
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let id = loaded
                .id(name)
                .ok_or_else(|| file_err(path, format!("has no parameter {name:?}")))?;
            let v = loaded.get(id).clone();
            let old = &ps.values()[k];
            if v.shape() != old.shape() || v.dtype() != old.dtype() {
                return Err(file_err(
                    path,
                    format!(
                        "{name:?} is {} {:?} there, {} {:?} here",
                        v.dtype(),
                        v.shape(),
                        old.dtype(),
                        old.shape()
                    ),
                ));
            }
            Ok((k, v))
        })
        .collect::<Result<_>>()?;
    for (k, v) in pairs {
        ps.values_mut()[k] = v;
    }
    Ok(())
}
