//! Structural linear maps: `transpose`, `adjoint`, `conj`, `reshape`/`vec`, `slice` and its
//! adjoint `embed`, `hcat`/`vcat`, `broadcast_to`, `diag` and its adjoint `diag_embed`,
//! and `tril_scaled` (lower triangle with a scaled diagonal).
//!
//! Every map `L` here is linear, so its tangent rule is `L` itself and its adjoint rule is
//! `L*` with `⟨L*Ȳ, X⟩ = ⟨Ȳ, LX⟩`:
//!
//! | L(X)                  | L*(Ȳ)                                   |
//! |-----------------------|-----------------------------------------|
//! | Xᵀ                    | Ȳᵀ                                      |
//! | Xᴴ                    | Ȳᴴ                                      |
//! | conj(X)               | conj(Ȳ)                                 |
//! | reshape(X, p, q)      | reshape(Ȳ, m, n) (column-major both)    |
//! | X[r₀..r₁, c₀..c₁]     | embed Ȳ at (r₀, c₀) in zeros(m, n)      |
//! | [X₁ X₂ …] / [X₁; X₂]  | the matching blocks of Ȳ                 |
//! | broadcast v to m×n    | sum of Ȳ along the broadcast axes       |
//! | diag(X) (k×1)         | diag_embed(Ȳ) into m×n                  |
//! | tril(X) with diag·c   | the same map (it is self-adjoint)       |
//!
//! Derivation: docs/math/structure.md.

use std::ops::Range;
use std::rc::Rc;

use faer::Mat;

use crate::error::{EngineError, Result};
use crate::map_value;
use crate::ops::{constant_like, Axis};
use crate::tape::{same_tape, Ct, Op, OpCtx, Var};
use crate::value::{Scalar, Value};

type Rules<'t> = Result<Vec<Option<Var<'t>>>>;

fn lift<'t>(t: Option<Var<'t>>, f: impl FnOnce(Var<'t>) -> Result<Var<'t>>) -> Rules<'t> {
    Ok(vec![t.map(f).transpose()?])
}

struct Transpose;
struct Adjoint;
struct Conjugate;
struct Reshape {
    from: (usize, usize),
    to: (usize, usize),
}
struct Slice {
    full: (usize, usize),
    r0: usize,
    c0: usize,
    part: (usize, usize),
}
struct Embed {
    full: (usize, usize),
    r0: usize,
    c0: usize,
    part: (usize, usize),
}
struct Concat {
    axis: Axis,
    sizes: Vec<usize>,
}
struct Broadcast {
    from: (usize, usize),
    to: (usize, usize),
}
struct Diag {
    shape: (usize, usize),
}
struct DiagEmbed {
    shape: (usize, usize),
}
struct TrilScaled {
    diag: f64,
}

impl Op for Transpose {
    fn name(&self) -> &'static str {
        "transpose"
    }
    fn copies_entries(&self) -> bool {
        true
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(ct[0], |g| g.transpose())
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        _: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        // the transpose's entries are the cotangent's: same bound
        out.push(ct[0].as_ref().map(|g| {
            Ct::new(
                map_value!(&*g.value, x => crate::pool::transposed(x.as_ref(), false)),
                g.bound,
            )
        }));
        Ok(true)
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(t[0], |g| g.transpose())
    }
}

impl Op for Adjoint {
    fn name(&self) -> &'static str {
        "adjoint"
    }
    fn copies_entries(&self) -> bool {
        true
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(ct[0], |g| g.adjoint())
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        _: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        // conjugation keeps |re| and |im|: same bound
        out.push(ct[0].as_ref().map(|g| {
            let v = match &*g.value {
                Value::Real(x) => Value::Real(crate::pool::transposed(x.as_ref(), false)),
                Value::Complex(x) => Value::Complex(crate::pool::transposed(x.as_ref(), true)),
            };
            Ct::new(v, g.bound)
        }));
        Ok(true)
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(t[0], |g| g.adjoint())
    }
}

impl Op for Conjugate {
    fn name(&self) -> &'static str {
        "conj"
    }
    fn copies_entries(&self) -> bool {
        true
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(ct[0], |g| g.conj())
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(t[0], |g| g.conj())
    }
}

impl Op for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn copies_entries(&self) -> bool {
        true
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(ct[0], |g| g.reshape(self.from.0, self.from.1))
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(t[0], |g| g.reshape(self.to.0, self.to.1))
    }
}

impl Op for Slice {
    fn name(&self) -> &'static str {
        "slice"
    }
    fn copies_entries(&self) -> bool {
        true
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(ct[0], |g| g.embed(self.full, self.r0, self.c0))
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        _: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        // `embed` by value: zeros and the cotangent's entries, same bound
        let ((m, n), (pm, pn)) = (self.full, self.part);
        out.push(ct[0].as_ref().map(|g| {
            let v = map_value!(&*g.value, x => {
                let mut y = crate::pool::zeros(m, n);
                y.as_mut().submatrix_mut(self.r0, self.c0, pm, pn).copy_from(x.as_ref());
                y
            });
            Ct::new(v, g.bound)
        }));
        Ok(true)
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(t[0], |g| {
            g.slice(
                self.r0..self.r0 + self.part.0,
                self.c0..self.c0 + self.part.1,
            )
        })
    }
}

impl Op for Embed {
    fn name(&self) -> &'static str {
        "embed"
    }
    fn copies_entries(&self) -> bool {
        true
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(ct[0], |g| {
            g.slice(
                self.r0..self.r0 + self.part.0,
                self.c0..self.c0 + self.part.1,
            )
        })
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        _: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        // `slice` by value: a block of the cotangent, same bound
        let (pm, pn) = self.part;
        out.push(ct[0].as_ref().map(|g| {
            let v = map_value!(&*g.value, x => crate::pool::owned(x.as_ref().submatrix(self.r0, self.c0, pm, pn)));
            Ct::new(v, g.bound)
        }));
        Ok(true)
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(t[0], |g| g.embed(self.full, self.r0, self.c0))
    }
}

impl Op for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn copies_entries(&self) -> bool {
        true
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Rules<'t> {
        let Some(g) = ct[0] else {
            return Ok(vec![None; self.sizes.len()]);
        };
        let (m, n) = g.shape();
        let mut off = 0;
        let mut out = Vec::with_capacity(self.sizes.len());
        for (i, &s) in self.sizes.iter().enumerate() {
            out.push(if ctx.needs_grad(i) {
                Some(match self.axis {
                    Axis::Cols => g.slice(0..m, off..off + s)?,
                    _ => g.slice(off..off + s, 0..n)?,
                })
            } else {
                None
            });
            off += s;
        }
        Ok(out)
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        ctx: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        // the node rule's slices by value: blocks of the cotangent, same bound
        let Some(g) = &ct[0] else {
            out.extend(std::iter::repeat_n(None, self.sizes.len()));
            return Ok(true);
        };
        let (m, n) = g.value.shape();
        let mut off = 0;
        for (i, &s) in self.sizes.iter().enumerate() {
            out.push(ctx.needs_grad(i).then(|| {
                let (r0, c0, pm, pn) = match self.axis {
                    Axis::Cols => (0, off, m, s),
                    _ => (off, 0, s, n),
                };
                let v = map_value!(&*g.value, x => crate::pool::owned(x.as_ref().submatrix(r0, c0, pm, pn)));
                Ct::new(v, g.bound)
            }));
            off += s;
        }
        Ok(true)
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Rules<'t> {
        let tape = ctx.input(0).tape();
        let parts: Vec<Var<'t>> = t
            .iter()
            .zip(ctx.inputs())
            .map(|(ti, x)| match ti {
                Some(v) => *v,
                None => {
                    let (m, n) = x.shape();
                    constant_like(tape, x.dtype(), m, n, |_, _| (0.0, 0.0))
                }
            })
            .collect();
        Ok(vec![Some(match self.axis {
            Axis::Cols => Var::hcat(&parts)?,
            _ => Var::vcat(&parts)?,
        })])
    }
}

impl Op for Broadcast {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }
    fn copies_entries(&self) -> bool {
        true
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(ct[0], |g| {
            let (fm, fn_) = self.from;
            let (tm, tn) = self.to;
            let g = if fm == 1 && tm != 1 {
                g.sum(Axis::Rows)?
            } else {
                g
            };
            if fn_ == 1 && tn != 1 {
                g.sum(Axis::Cols)
            } else {
                Ok(g)
            }
        })
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        _: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        // the node rule's sums, by value; a sum's bound is not proved (the sweep scans it)
        let ((fm, fn_), (tm, tn)) = (self.from, self.to);
        let (rows, cols) = (fm == 1 && tm != 1, fn_ == 1 && tn != 1);
        out.push(ct[0].as_ref().map(|g| {
            if !rows && !cols {
                return g.clone();
            }
            use crate::ops::reduce::sum_mat;
            let v = map_value!(&*g.value, x => match (rows, cols) {
                (true, true) => sum_mat(&sum_mat(x, Axis::Rows), Axis::Cols),
                (true, false) => sum_mat(x, Axis::Rows),
                _ => sum_mat(x, Axis::Cols),
            });
            Ct::new(v, f64::INFINITY)
        }));
        Ok(true)
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(t[0], |g| g.broadcast_to(self.to.0, self.to.1))
    }
}

impl Op for Diag {
    fn name(&self) -> &'static str {
        "diag"
    }
    fn copies_entries(&self) -> bool {
        true
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(ct[0], |g| g.diag_embed(self.shape.0, self.shape.1))
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(t[0], |g| g.diag())
    }
}

impl Op for DiagEmbed {
    fn name(&self) -> &'static str {
        "diag_embed"
    }
    fn copies_entries(&self) -> bool {
        true
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(ct[0], |g| g.diag())
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(t[0], |g| g.diag_embed(self.shape.0, self.shape.1))
    }
}

impl Op for TrilScaled {
    fn name(&self) -> &'static str {
        "tril_scaled"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(ct[0], |g| g.tril_scaled(self.diag))
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Rules<'t> {
        lift(t[0], |g| g.tril_scaled(self.diag))
    }
}

fn tril_mat<T: Scalar>(x: &Mat<T>, diag: f64) -> Mat<T> {
    let (d, z) = (T::from_f64(diag), T::from_f64(0.0));
    crate::pool::from_fn(x.nrows(), x.ncols(), |i, j| {
        if i > j {
            x[(i, j)]
        } else if i == j {
            x[(i, j)] * d
        } else {
            z
        }
    })
}

fn diag_embed_mat<T: Scalar>(x: &Mat<T>, m: usize, n: usize) -> Mat<T> {
    let z = T::from_f64(0.0);
    crate::pool::from_fn(m, n, |i, j| if i == j { x[(i, 0)] } else { z })
}

fn concat_value<T: Scalar>(parts: &[&Mat<T>], axis: Axis) -> Mat<T> {
    match axis {
        Axis::Cols => {
            let m = parts[0].nrows();
            let n: usize = parts.iter().map(|p| p.ncols()).sum();
            let mut out = crate::pool::zeros(m, n);
            let mut off = 0;
            for p in parts {
                out.as_mut()
                    .submatrix_mut(0, off, m, p.ncols())
                    .copy_from(p.as_ref());
                off += p.ncols();
            }
            out
        }
        _ => {
            let n = parts[0].ncols();
            let m: usize = parts.iter().map(|p| p.nrows()).sum();
            let mut out = crate::pool::zeros(m, n);
            let mut off = 0;
            for p in parts {
                out.as_mut()
                    .submatrix_mut(off, 0, p.nrows(), n)
                    .copy_from(p.as_ref());
                off += p.nrows();
            }
            out
        }
    }
}

impl<'t> Var<'t> {
    /// Transpose `selfᵀ` (no conjugation).
    ///
    /// # Errors
    /// None in practice.
    pub fn transpose(self) -> Result<Var<'t>> {
        let a = self.rc();
        let out = map_value!(&*a, x => crate::pool::transposed(x.as_ref(), false));
        self.tape().record1(shared_op!(Transpose), &[self], out)
    }

    /// Adjoint (conjugate transpose) `selfᴴ`; the transpose for real matrices.
    ///
    /// # Errors
    /// None in practice.
    pub fn adjoint(self) -> Result<Var<'t>> {
        let a = self.rc();
        let out = match &*a {
            Value::Real(x) => Value::Real(crate::pool::transposed(x.as_ref(), false)),
            Value::Complex(x) => Value::Complex(crate::pool::transposed(x.as_ref(), true)),
        };
        self.tape().record1(shared_op!(Adjoint), &[self], out)
    }

    /// Entrywise complex conjugate (the identity for real matrices).
    ///
    /// # Errors
    /// None in practice.
    pub fn conj(self) -> Result<Var<'t>> {
        let a = self.rc();
        if let Value::Real(_) = &*a {
            return Ok(self);
        }
        let out = map_value!(&*a, x => crate::ops::ew1(x, |p| p.cj()));
        self.tape().record1(Rc::new(Conjugate), &[self], out)
    }

    /// Reshape to `m×n` in column-major order (the order of `vec`).
    ///
    /// # Errors
    /// [`EngineError::ShapeMismatch`] when `m·n` differs from the number of entries.
    pub fn reshape(self, m: usize, n: usize) -> Result<Var<'t>> {
        let a = self.rc();
        let (m0, n0) = a.shape();
        if m.checked_mul(n) != Some(m0 * n0) {
            return Err(EngineError::ShapeMismatch {
                op: "reshape",
                lhs: (m0, n0),
                rhs: (m, n),
                hint: "reshape keeps the number of entries",
            });
        }
        let out = map_value!(&*a, x => crate::pool::from_fn(m, n, |i, j| {
            // m0 ≥ 1 here: an empty target has no entries to fill
            let l = i + j * m;
            x[(l % m0, l / m0)]
        }));
        self.tape().record1(
            Rc::new(Reshape {
                from: (m0, n0),
                to: (m, n),
            }),
            &[self],
            out,
        )
    }

    /// Column-major vectorisation: an `mn×1` column.
    ///
    /// # Errors
    /// None in practice.
    pub fn vec(self) -> Result<Var<'t>> {
        let (m, n) = self.shape();
        self.reshape(m * n, 1)
    }

    /// The submatrix `self[rows, cols]` (an empty range gives an empty matrix).
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] for reversed or out-of-bounds ranges.
    pub fn slice(self, rows: Range<usize>, cols: Range<usize>) -> Result<Var<'t>> {
        let a = self.rc();
        let (m, n) = a.shape();
        if rows.start > rows.end || cols.start > cols.end || rows.end > m || cols.end > n {
            return Err(EngineError::InvalidArgument {
                op: "slice",
                message: format!(
                    "ranges {rows:?}×{cols:?} are reversed or outside a {m}×{n} matrix"
                ),
            });
        }
        let (pm, pn) = (rows.end - rows.start, cols.end - cols.start);
        let out = map_value!(&*a, x => crate::pool::owned(x.as_ref().submatrix(rows.start, cols.start, pm, pn)));
        let op = Slice {
            full: (m, n),
            r0: rows.start,
            c0: cols.start,
            part: (pm, pn),
        };
        self.tape().record1(Rc::new(op), &[self], out)
    }

    /// Places `self` at `(r0, c0)` in a zero matrix of shape `full` (the adjoint of `slice`).
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] when `self` does not fit.
    pub fn embed(self, full: (usize, usize), r0: usize, c0: usize) -> Result<Var<'t>> {
        let a = self.rc();
        let (pm, pn) = a.shape();
        crate::ops::entries("embed", full.0, full.1)?;
        if crate::ops::add_sizes("embed", r0, pm)? > full.0
            || crate::ops::add_sizes("embed", c0, pn)? > full.1
        {
            return Err(EngineError::InvalidArgument {
                op: "embed",
                message: format!(
                    "a {pm}×{pn} block at ({r0}, {c0}) does not fit in {}×{}",
                    full.0, full.1
                ),
            });
        }
        let out = map_value!(&*a, x => {
            let mut y = Mat::zeros(full.0, full.1);
            y.as_mut().submatrix_mut(r0, c0, pm, pn).copy_from(x.as_ref());
            y
        });
        self.tape().record1(
            Rc::new(Embed {
                full,
                r0,
                c0,
                part: (pm, pn),
            }),
            &[self],
            out,
        )
    }

    fn concat(parts: &[Var<'t>], axis: Axis) -> Result<Var<'t>> {
        let op = if axis == Axis::Cols { "hcat" } else { "vcat" };
        if parts.is_empty() {
            return Err(EngineError::InvalidArgument {
                op,
                message: "nothing to concatenate".into(),
            });
        }
        let tape = same_tape(op, parts)?;
        let vals: Vec<Rc<Value>> = parts.iter().map(|p| p.rc()).collect();
        let first = &vals[0];
        for v in &vals[1..] {
            let fits = match axis {
                Axis::Cols => v.nrows() == first.nrows(),
                _ => v.ncols() == first.ncols(),
            };
            if !fits {
                return Err(EngineError::ShapeMismatch {
                    op,
                    lhs: first.shape(),
                    rhs: v.shape(),
                    hint: "hcat needs equal row counts, vcat equal column counts",
                });
            }
            crate::ops::same_dtype(op, first, v)?;
        }
        let sizes: Vec<usize> = vals
            .iter()
            .map(|v| {
                if axis == Axis::Cols {
                    v.ncols()
                } else {
                    v.nrows()
                }
            })
            .collect();
        let total = sizes
            .iter()
            .try_fold(0usize, |acc, &s| crate::ops::add_sizes(op, acc, s))?;
        match axis {
            Axis::Cols => crate::ops::entries(op, first.nrows(), total)?,
            _ => crate::ops::entries(op, total, first.ncols())?,
        };
        let out = match &**first {
            Value::Real(_) => {
                let ms: Vec<&Mat<f64>> = vals
                    .iter()
                    .map(|v| v.as_real().expect("checked dtype"))
                    .collect();
                Value::Real(concat_value(&ms, axis))
            }
            Value::Complex(_) => {
                let ms: Vec<&Mat<crate::C64>> = vals
                    .iter()
                    .map(|v| v.as_complex().expect("checked dtype"))
                    .collect();
                Value::Complex(concat_value(&ms, axis))
            }
        };
        tape.record1(Rc::new(Concat { axis, sizes }), parts, out)
    }

    /// Horizontal concatenation `[X₁ X₂ …]`.
    ///
    /// # Errors
    /// Empty list; row counts or dtypes differ; Vars from different tapes.
    pub fn hcat(parts: &[Var<'t>]) -> Result<Var<'t>> {
        Self::concat(parts, Axis::Cols)
    }

    /// Vertical concatenation `[X₁; X₂; …]`.
    ///
    /// # Errors
    /// Empty list; column counts or dtypes differ; Vars from different tapes.
    pub fn vcat(parts: &[Var<'t>]) -> Result<Var<'t>> {
        Self::concat(parts, Axis::Rows)
    }

    /// Broadcasts a 1×1, 1×n or m×1 value to `m×n` (repeating it; a target with a zero
    /// dimension gives an empty matrix).
    ///
    /// # Errors
    /// [`EngineError::ShapeMismatch`] when the shape cannot be broadcast; a target too large
    /// to allocate.
    pub fn broadcast_to(self, m: usize, n: usize) -> Result<Var<'t>> {
        let a = self.rc();
        let (am, an) = a.shape();
        crate::ops::entries("broadcast_to", m, n)?;
        if (am != 1 && am != m) || (an != 1 && an != n) {
            return Err(EngineError::ShapeMismatch {
                op: "broadcast_to",
                lhs: (am, an),
                rhs: (m, n),
                hint: "only dimensions of size 1 can be broadcast",
            });
        }
        let out = map_value!(&*a, x => crate::pool::from_fn(m, n, |i, j| x[(if am == 1 { 0 } else { i }, if an == 1 { 0 } else { j })]));
        self.tape().record1(
            Rc::new(Broadcast {
                from: (am, an),
                to: (m, n),
            }),
            &[self],
            out,
        )
    }

    /// The main diagonal as a `min(m,n)×1` column.
    ///
    /// # Errors
    /// None in practice.
    pub fn diag(self) -> Result<Var<'t>> {
        let a = self.rc();
        let (m, n) = a.shape();
        let out = map_value!(&*a, x => crate::pool::from_fn(m.min(n), 1, |i, _| x[(i, i)]));
        self.tape()
            .record1(Rc::new(Diag { shape: (m, n) }), &[self], out)
    }

    /// An `m×n` matrix with `self` (a `min(m,n)×1` column) on the diagonal, zero elsewhere.
    ///
    /// # Errors
    /// [`EngineError::ShapeMismatch`] when `self` is not `min(m,n)×1`.
    pub fn diag_embed(self, m: usize, n: usize) -> Result<Var<'t>> {
        let a = self.rc();
        crate::ops::entries("diag_embed", m, n)?;
        if a.shape() != (m.min(n), 1) {
            return Err(EngineError::ShapeMismatch {
                op: "diag_embed",
                lhs: a.shape(),
                rhs: (m.min(n), 1),
                hint: "the diagonal of an m×n matrix is a min(m,n)×1 column",
            });
        }
        let out = map_value!(&*a, x => diag_embed_mat(x, m, n));
        self.tape()
            .record1(Rc::new(DiagEmbed { shape: (m, n) }), &[self], out)
    }

    /// The lower triangle of a square matrix with its diagonal multiplied by `diag`
    /// (`tril_scaled(X, 0.5)` is the Φ of the Cholesky rules).
    ///
    /// # Errors
    /// [`EngineError::NotSquare`]; [`EngineError::InvalidArgument`] for a non-finite `diag`.
    pub fn tril_scaled(self, diag: f64) -> Result<Var<'t>> {
        let a = self.rc();
        crate::ops::square("tril_scaled", &a)?;
        if !diag.is_finite() {
            return Err(EngineError::InvalidArgument {
                op: "tril_scaled",
                message: format!("diagonal factor must be finite, got {diag}"),
            });
        }
        let out = map_value!(&*a, x => tril_mat(x, diag));
        self.tape()
            .record1(Rc::new(TrilScaled { diag }), &[self], out)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_rules, complex_matrix, real_matrix};
    use crate::{EngineError, Tape};

    #[test]
    fn forward_closed_forms() {
        let t = Tape::new();
        let a = t.constant(complex_matrix(2, 3, 1)).unwrap();
        let av = a.value();
        let x = av.as_complex().unwrap();
        let h = a.adjoint().unwrap().value();
        let tr = a.transpose().unwrap().value();
        let cj = a.conj().unwrap().value();
        let (h, tr, cj) = (
            h.as_complex().unwrap(),
            tr.as_complex().unwrap(),
            cj.as_complex().unwrap(),
        );
        assert_eq!(h[(2, 1)], x[(1, 2)].conj());
        assert_eq!(tr[(2, 1)], x[(1, 2)]);
        assert_eq!(cj[(1, 2)], x[(1, 2)].conj());
        let v = a.vec().unwrap().value();
        assert_eq!(v.as_complex().unwrap()[(3, 0)], x[(1, 1)]);
        let s = a.slice(1..2, 1..3).unwrap().value();
        assert_eq!(s.as_complex().unwrap()[(0, 1)], x[(1, 2)]);
        let e = a
            .slice(1..2, 1..3)
            .unwrap()
            .embed((2, 3), 1, 1)
            .unwrap()
            .value();
        assert_eq!(e.as_complex().unwrap()[(0, 0)].norm(), 0.0);
        assert_eq!(e.as_complex().unwrap()[(1, 2)], x[(1, 2)]);
        let hc = crate::Var::hcat(&[a, a]).unwrap().value();
        assert_eq!(hc.shape(), (2, 6));
        assert_eq!(hc.as_complex().unwrap()[(1, 4)], x[(1, 1)]);
        let vc = crate::Var::vcat(&[a, a, a]).unwrap().value();
        assert_eq!(vc.shape(), (6, 3));
        assert_eq!(vc.as_complex().unwrap()[(5, 2)], x[(1, 2)]);
        let d = a.diag().unwrap().value();
        assert_eq!(d.shape(), (2, 1));
        assert_eq!(d.as_complex().unwrap()[(1, 0)], x[(1, 1)]);
        let r = t.constant(real_matrix(1, 3, 2)).unwrap();
        let b = r.broadcast_to(4, 3).unwrap().value();
        assert_eq!(
            b.as_real().unwrap()[(3, 2)],
            r.value().as_real().unwrap()[(0, 2)]
        );
        let sq = t.constant(real_matrix(3, 3, 3)).unwrap();
        let l = sq.tril_scaled(0.5).unwrap().value();
        let (l, s) = (
            l.as_real().unwrap().clone(),
            sq.value().as_real().unwrap().clone(),
        );
        assert_eq!(
            (l[(0, 1)], l[(1, 0)], l[(1, 1)]),
            (0.0, s[(1, 0)], 0.5 * s[(1, 1)])
        );
    }

    #[test]
    fn rules() {
        for make in [real_matrix, complex_matrix] {
            for (m, n) in [(1, 1), (2, 3), (4, 2)] {
                let a = make(m, n, 21);
                assert_rules(
                    "transpose",
                    |_, x| x[0].transpose(),
                    std::slice::from_ref(&a),
                );
                assert_rules("adjoint", |_, x| x[0].adjoint(), std::slice::from_ref(&a));
                assert_rules("conj", |_, x| x[0].conj(), std::slice::from_ref(&a));
                assert_rules("vec", |_, x| x[0].vec(), std::slice::from_ref(&a));
                assert_rules(
                    "reshape",
                    |_, x| x[0].reshape(n, m),
                    std::slice::from_ref(&a),
                );
                assert_rules(
                    "slice",
                    |_, x| x[0].slice(0..m, n - 1..n),
                    std::slice::from_ref(&a),
                );
                assert_rules(
                    "embed",
                    |_, x| x[0].embed((m + 2, n + 1), 1, 1),
                    std::slice::from_ref(&a),
                );
                assert_rules(
                    "hcat",
                    |_, x| crate::Var::hcat(&[x[0], x[1], x[0]]),
                    &[a.clone(), make(m, 2, 3)],
                );
                assert_rules(
                    "vcat",
                    |_, x| crate::Var::vcat(&[x[1], x[0]]),
                    &[a.clone(), make(3, n, 4)],
                );
                assert_rules("diag", |_, x| x[0].diag(), std::slice::from_ref(&a));
                assert_rules(
                    "diag_embed",
                    |_, x| x[0].diag_embed(m, n),
                    &[make(m.min(n), 1, 5)],
                );
            }
            assert_rules(
                "broadcast row",
                |_, x| x[0].broadcast_to(3, 4),
                &[make(1, 4, 6)],
            );
            assert_rules(
                "broadcast col",
                |_, x| x[0].broadcast_to(3, 4),
                &[make(3, 1, 7)],
            );
            assert_rules(
                "broadcast scalar",
                |_, x| x[0].broadcast_to(2, 3),
                &[make(1, 1, 8)],
            );
            assert_rules(
                "tril_scaled",
                |_, x| x[0].tril_scaled(0.5),
                &[make(4, 4, 9)],
            );
        }
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let a = t.leaf(real_matrix(2, 3, 1)).unwrap();
        assert!(matches!(
            a.reshape(4, 2),
            Err(EngineError::ShapeMismatch { op: "reshape", .. })
        ));
        assert!(matches!(
            a.slice(0..3, 0..1),
            Err(EngineError::InvalidArgument { op: "slice", .. })
        ));
        // an empty range is an empty matrix; a reversed one is an error
        assert_eq!(a.slice(1..1, 0..1).unwrap().shape(), (0, 1));
        let (hi, lo) = (2, 1);
        assert!(matches!(
            a.slice(hi..lo, 0..1),
            Err(EngineError::InvalidArgument { op: "slice", .. })
        ));
        // sizes that overflow usize are errors, not panics (issue 7, bug 6)
        assert!(matches!(
            a.embed((usize::MAX, 2), usize::MAX, 0),
            Err(EngineError::InvalidArgument { op: "embed", .. })
        ));
        assert!(matches!(
            a.reshape(usize::MAX, 2),
            Err(EngineError::ShapeMismatch { op: "reshape", .. })
        ));
        assert!(matches!(
            t.leaf(real_matrix(1, 1, 1))
                .unwrap()
                .broadcast_to(1 << 40, 1 << 40),
            Err(EngineError::InvalidArgument {
                op: "broadcast_to",
                ..
            })
        ));
        assert!(matches!(
            a.embed((2, 2), 0, 0),
            Err(EngineError::InvalidArgument { op: "embed", .. })
        ));
        let b = t.leaf(real_matrix(3, 3, 1)).unwrap();
        assert!(matches!(
            crate::Var::hcat(&[a, b]),
            Err(EngineError::ShapeMismatch { op: "hcat", .. })
        ));
        assert!(matches!(
            crate::Var::vcat(&[]),
            Err(EngineError::InvalidArgument { op: "vcat", .. })
        ));
        assert!(matches!(
            a.broadcast_to(4, 3),
            Err(EngineError::ShapeMismatch {
                op: "broadcast_to",
                ..
            })
        ));
        assert!(matches!(
            a.diag_embed(2, 2),
            Err(EngineError::ShapeMismatch {
                op: "diag_embed",
                ..
            })
        ));
        assert!(matches!(
            a.tril_scaled(0.5),
            Err(EngineError::NotSquare { .. })
        ));
    }
}
