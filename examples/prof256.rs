use matgrad::engine::testing::{real_matrix, symmetric_from_seed, Spectrum};
use matgrad::engine::Tape;
use matgrad::spectral::eigh;
fn main() {
    let n = 256;
    let a = symmetric_from_seed(&Spectrum::log_spaced(n, 0.5, 10.0).values(), 1);
    let (lbar, ubar) = (real_matrix(n, 1, 2), real_matrix(n, n, 3));
    let mut tot = std::time::Duration::ZERO;
    for _ in 0..30 {
        let tape = Tape::new();
        let x = tape.leaf(a.clone()).unwrap();
        let (l, u) = eigh(x).unwrap();
        let t0 = std::time::Instant::now();
        std::hint::black_box(tape.vjp(&[l, u], &[lbar.clone(), ubar.clone()], &[x]).unwrap());
        tot += t0.elapsed();
    }
    eprintln!("backward {:?}", tot / 30);
}
