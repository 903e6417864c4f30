"""Mutation test: one deliberate bug at a time in a rule, then the test suite and `matgrad
check`; a mutation must make something fail. Prints a table (markdown) of each mutation,
whether `cargo test` caught it (and which tests failed), and whether `check` did.

Run from the repository root:  python3 tools/mutation.py [--only NAME]
It edits one source file at a time and always restores it (also on Ctrl-C).
"""
import argparse
import re
import signal
import subprocess
import sys

# restore the edited file on SIGTERM too (the finally clause below runs on SystemExit)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))

MUTATIONS = [
    # (name, file, original, mutant)
    ("complex matmul: drop the conjugate of B in Ā = Ḡ Bᴴ", "engine/src/ops/matmul.rs",
     "(P, P) => g.matmul_forms(P, b, H)?,", "(P, P) => g.matmul_forms(P, b.conj()?, H)?,"),
    ("complex matmul: the small-product stack copy of Aᴴ drops the conjugate", "engine/src/ops/matmul.rs",
     "                    *dst = x.cj();", "                    *dst = *x;"),
    ("matmul: a product split along k over threads drops the later slices' partial sums",
     "engine/src/ops/matmul.rs",
     "                let s = out[(i, j)] + p[(i, j)];", "                let s = out[(i, j)];"),
    ("gram: a block narrower than 16 columns loses its factor α",
     "engine/src/ops/gram.rs", "        if alpha != 1.0 {", "        if alpha != 1.0 && false {"),
    ("conv2d fused: a chunk's later images replace the kernels' partial sum instead of adding",
     "layers/src/conv2d.rs", "                            Accum::Add,", "                            Accum::Replace,"),
    ("conv2d fused: a group of images in parallel starts from image 0, not its first image",
     "layers/src/conv2d.rs", "self.gather_block(x, first + i, cols, &mut ws);", "self.gather_block(x, i, cols, &mut ws);"),
    ("conv2d fused: a block's taps in the padding keep the previous block's values",
     "layers/src/conv2d.rs", "                None => dst.fill(T::from_f64(0.0)),", "                None => {}"),
    ("eigh: flip the sign of F = 1/(λⱼ − λᵢ) (fused backward)", "spectral/src/eigh.rs",
     "*wi = T::from_f64(0.5 * (self.f)(lj - li));", "*wi = T::from_f64(0.5 * (self.f)(li - lj));"),
    ("divided differences: log without the log1p guard", "spectral/src/divided.rs",
     "                let l = if t > -0.5 {\n                    t.ln_1p()", "                let l = if t > -0.5 {\n                    (1.0 + t).ln()"),
    ("svd: drop the (I − UUᴴ) Ū S⁻¹ Vᴴ term for m > k", "spectral/src/svd.rs",
     "if let (Some(ub), true) = (ub, m > k) {", "if let (Some(ub), true) = (ub, m > k && false) {"),
    ("svd: drop the finite 1/(sᵢ + sⱼ) part at ties (well-defined part)", "spectral/src/svd.rs",
     "acc(fp.mul(diff)?.scale(0.5)?, &mut core)?;", "let _ = (&fp, &diff);"),
    ("JVP only: div's tangent with + instead of −", "engine/src/ops/elementwise.rs",
     "(Some(da), Some(db)) => da.sub(c.mul(db)?)?,", "(Some(da), Some(db)) => da.add(c.mul(db)?)?,"),
    ("second order only: mul's VJP with a detached factor", "engine/src/ops/elementwise.rs",
     "Some(g.mul(b.conj()?)?)", "Some(g.mul(b.detach().conj()?)?)"),
    ("Daleckii–Krein: drop the JVP term of the first-order node in A", "spectral/src/daleckii_krein.rs",
     "let from_a = t[0].map(|da| dk2(&self.fam, a, da, g)).transpose()?;",
     "let from_a: Option<Var<'t>> = { let _ = (t, g); None };"),
    ("ncut / range projector: Π̄ instead of Π̄ + Π̄ᴴ in the adjoint", "spectral/src/range.rs",
     "pb.add(pb.adjoint()?)", "pb.add(pb)"),
    ("o2p: covariance divided by m − 1", "layers/src/o2p.rs",
     "features.gram_blocks(1, 1.0 / m, eps)?", "features.gram_blocks(1, 1.0 / (m - 1.0).max(1.0), eps)?"),
    ("gram: adjoint F̄ = α F C̄ instead of α F (C̄ + C̄ᴴ)", "engine/src/ops/gram.rs",
     "let s = g.herm_sum(self.alpha, self.batch)?;", "let s = g.scale(2.0 * self.alpha)?;"),
    ("herm_sum: X_bᵀ instead of X_bᴴ (drop the conjugate)", "engine/src/ops/herm_sum.rs",
     "ob[(i, j)] = (xb[(i, j)] + xb[(j, i)].cj()) * a;", "ob[(i, j)] = (xb[(i, j)] + xb[(j, i)]) * a;"),
    ("svd value-only adjoint: + instead of − for the n > k off-range term", "spectral/src/svd.rs",
     "*o -= x * T::from_f64(si);", "*o += x * T::from_f64(si);"),
    ("svd value-only adjoint: Jᵥ = Xᵥ + Xᵥᴴ instead of Xᵥ − Xᵥᴴ", "spectral/src/svd.rs",
     "let (a, b) = (p - q, r - t);", "let (a, b) = (p - q, r + t);"),
    ("pool::transposed: the tiled adjoint drops the conjugate", "engine/src/pool.rs",
     "*d = if conj { v.cj() } else { v };", "*d = v;"),
    ("tape: overwrite instead of accumulate a second cotangent (recorded sweep)", "engine/src/tape.rs",
     "(Grad::Var(g), true) => Grad::Var(g.add(self.to_var(&ct))?),", "(Grad::Var(g), true) => { let _ = g; ct }"),
    ("tape: overwrite instead of accumulate a second cotangent (detached sweep)", "engine/src/tape.rs",
     "let sum = Self::add_cts(self.take_ct(g), &ct)?;", "let sum = { let _ = g; ct.clone() };"),
    ("value rule (detached sweeps): matmul's Ā = Ḡ Bᴴ with B for Bᴴ", "engine/src/ops/matmul.rs",
     "(P, P) => prod(gv, P, gb, &bv, H, bb)?,", "(P, P) => prod(gv, P, gb, &bv, P, bb)?,"),
    ("value rule (detached sweeps): scale's cotangent by c instead of c̄", "engine/src/ops/arith.rs",
     "        let c = self.c.conj();", "        let c = self.c;"),
    ("adjugate: drop the off-diagonal sign of N", "engine/src/ops/adjugate.rs",
     "-(x[(i, j)] * T::from_f64(self.pi2[i * n + j]))", "x[(i, j)] * T::from_f64(self.pi2[i * n + j])"),
    # the no-silent-NaN guarantee: outputs whose bound proves them finite are not scanned
    ("value rule (detached sweeps): mul's Ā = Ḡ ∘ conj(B) without the conjugate", "engine/src/ops/elementwise.rs",
     "ew2(x, y, |p, q| p * q.cj())", "ew2(x, y, |p, q| p * q)"),
    ("value rule (detached sweeps): broadcast_to's cotangent summed along the wrong axis", "engine/src/ops/structure.rs",
     "(true, false) => sum_mat(x, Axis::Rows),", "(true, false) => sum_mat(x, Axis::Cols),"),
    ("value rule (detached sweeps): slice's cotangent embedded at row 0", "engine/src/ops/structure.rs",
     "y.as_mut().submatrix_mut(self.r0, self.c0, pm, pn).copy_from(x.as_ref());",
     "y.as_mut().submatrix_mut(0, self.c0, pm, pn).copy_from(x.as_ref());"),
    ("value rule (detached sweeps): a pointwise function's ḡ ∘ f′ without the conjugate", "engine/src/ops/elementwise.rs",
     "ew3(g, x, y, |g, x, y| g * d(x, y).cj())", "ew3(g, x, y, |g, x, y| g * d(x, y))"),
    ("Daleckii–Krein congruence: sym(Ḡ) = (Ḡ + Ḡᵀ)/2 without the conjugate (complex)", "spectral/src/sym_eig.rs",
     "let rh = transposed(r.as_ref(), true);", "let rh = transposed(r.as_ref(), false);"),
    ("general matrix function: a linear combination drops its identity term (expm's Padé)", "spectral/src/general.rs",
     "out[j] = T::from_f64(eye);", "out[j] = T::from_f64(0.0 * eye);"),
    ("no-NaN guard: matmul's bound without the inner dimension k", "engine/src/ops/matmul.rs",
     "let b = 2.0 * k as f64 * ba * bb;", "let b = 2.0 * ba * bb + 0.0 * k as f64;"),
    ("no-NaN guard: add's bound max(b_A, b_B) instead of b_A + b_B", "engine/src/ops/arith.rs",
     "// |x + y| ≤ |x| + |y|, and rounding is monotone\n        let bound = tape.bound(self) + tape.bound(other);",
     "// |x + y| ≤ |x| + |y|, and rounding is monotone\n        let bound = tape.bound(self).max(tape.bound(other));"),
    ("no-NaN guard: a value cotangent with an unproved bound is not scanned", "engine/src/tape.rs",
     "Grad::Val(mut c) if !is_proved(c.bound) => {", "Grad::Val(mut c) if false && !is_proved(c.bound) => {"),
    ("no-NaN guard: the finiteness scan skips a column's scalar tail", "engine/src/value.rs",
     ".fold(simd.reduce_sum_f64s(sum), |a, x| x.mul_add(0.0, a));", ".fold(simd.reduce_sum_f64s(sum), |a, _x| a);"),
]


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def failing_tests(out):
    names = re.findall(r"^test (\S+) \.\.\. FAILED", out, flags=re.M)
    names += re.findall(r"^---- (\S+) stdout ----", out, flags=re.M)
    if not names and "error[" in out:
        return ["(does not compile)"]
    if not names:
        return ["(a test binary failed; see the log)"]
    return sorted(set(names))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    args = ap.parse_args()
    rows = []
    for name, path, old, new in MUTATIONS:
        if args.only and args.only not in name:
            continue
        src = open(path).read()
        if src.count(old) != 1:
            print(f"{name}: the original text occurs {src.count(old)} times in {path}", file=sys.stderr)
            sys.exit(2)
        try:
            open(path, "w").write(src.replace(old, new))
            code, out = run(["cargo", "test", "--workspace", "--release", "--no-fail-fast"])
            tests = failing_tests(out) if code != 0 else []
            ccode, cout = run(["cargo", "run", "--release", "-q", "--", "check"])
            # summary rows start at column 0; the failure details below them are indented
            check_failed = [l.split()[0] for l in cout.splitlines()
                            if l and not l.startswith(" ") and l.rstrip().endswith("FAIL")]
        finally:
            open(path, "w").write(src)
        rows.append((name, tests, ccode != 0, check_failed))
        print(f"{name}: cargo test {'CAUGHT' if tests else 'missed'} ({len(tests)} failing), check {'CAUGHT' if ccode else 'missed'}", file=sys.stderr)
    print("| mutation | caught by cargo test | failing tests (first 6) | caught by check | ops failing in check |")
    print("|---|---|---|---|---|")
    for name, tests, ck, ops in rows:
        print(f"| {name} | {'yes' if tests else '**no**'} | {', '.join(tests[:6])}{' …' if len(tests) > 6 else ''} | {'yes' if ck else '**no**'} | {', '.join(ops[:6])} |")
    missed = [r for r in rows if not r[1]]
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
