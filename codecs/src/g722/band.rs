//! One G.722 sub-band's adaptive predictor state and the shared tables.

/// Low-band quantiser decision levels (Table 6, `q6`).
pub(super) const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121,
    1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
/// Low-band codes for negative / positive differences.
pub(super) const ILN: [i32; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8,
    7, 6, 5, 4, 0,
];
pub(super) const ILP: [i32; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37,
    36, 35, 34, 33, 32, 0,
];
/// Low-band inverse quantiser, 4-bit (`qm4`) and 6-bit (`qm6`).
pub(super) const QM4: [i32; 16] =
    [0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0];
pub(super) const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360,
    -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688,
    -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856,
    7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136,
    -432, -136,
];
/// High-band inverse quantiser and codes.
pub(super) const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
pub(super) const IHN: [i32; 3] = [0, 1, 0];
pub(super) const IHP: [i32; 3] = [0, 3, 2];

/// Log-scale factor adaptation (LOGSCL / LOGSCH).
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const WH: [i32; 3] = [0, -214, 798];
const RH2: [i32; 4] = [2, 1, 2, 1];
/// Inverse log-base-2 table for SCALEL / SCALEH.
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896,
    2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];

#[inline]
pub(super) fn saturate(x: i32) -> i32 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// Adaptive predictor and scale factor of one sub-band.
#[derive(Debug, Clone, Default)]
pub(super) struct Band {
    /// Predicted signal (`s`), pole part (`sp`) and zero part (`sz`).
    pub s: i32,
    sp: i32,
    sz: i32,
    r: [i32; 3],
    a: [i32; 3],
    ap: [i32; 3],
    p: [i32; 3],
    d: [i32; 7],
    b: [i32; 7],
    bp: [i32; 7],
    sg: [i32; 7],
    nb: i32,
    /// Quantiser scale factor.
    pub det: i32,
}

impl Band {
    pub fn low() -> Self {
        Self { det: 32, ..Self::default() }
    }

    pub fn high() -> Self {
        Self { det: 8, ..Self::default() }
    }

    /// Blocks 3L (LOGSCL, SCALEL): adapt the low-band scale factor from the 4-bit code.
    pub fn adapt_low_scale(&mut self, ril: i32) {
        let nb = ((self.nb * 127) >> 7) + WL[RL42[ril as usize] as usize];
        self.nb = nb.clamp(0, 18432);
        self.det = scale(self.nb, 8);
    }

    /// Blocks 3H (LOGSCH, SCALEH): adapt the high-band scale factor from the 2-bit code.
    pub fn adapt_high_scale(&mut self, ih: i32) {
        let nb = ((self.nb * 127) >> 7) + WH[RH2[ih as usize] as usize];
        self.nb = nb.clamp(0, 22528);
        self.det = scale(self.nb, 10);
    }

    /// Block 4: reconstruct, update the pole and zero predictor, and predict the next sample.
    pub fn update(&mut self, d: i32) {
        // RECONS, PARREC
        self.d[0] = d;
        self.r[0] = saturate(self.s + d);
        self.p[0] = saturate(self.sz + d);

        // UPPOL2
        for i in 0..3 {
            self.sg[i] = self.p[i] >> 15;
        }
        let wd1 = saturate(self.a[1] << 2);
        let wd2 = if self.sg[0] == self.sg[1] { -wd1 } else { wd1 }.min(32767);
        let mut wd3 = (wd2 >> 7) + if self.sg[0] == self.sg[2] { 128 } else { -128 };
        wd3 += (self.a[2] * 32512) >> 15;
        self.ap[2] = wd3.clamp(-12288, 12288);

        // UPPOL1
        self.sg[0] = self.p[0] >> 15;
        self.sg[1] = self.p[1] >> 15;
        let wd1 = if self.sg[0] == self.sg[1] { 192 } else { -192 };
        let wd2 = (self.a[1] * 32640) >> 15;
        let limit = saturate(15360 - self.ap[2]);
        self.ap[1] = saturate(wd1 + wd2).clamp(-limit, limit);

        // UPZERO
        let step = if d == 0 { 0 } else { 128 };
        self.sg[0] = d >> 15;
        for i in 1..7 {
            self.sg[i] = self.d[i] >> 15;
            let wd2 = if self.sg[i] == self.sg[0] { step } else { -step };
            let wd3 = (self.b[i] * 32640) >> 15;
            self.bp[i] = saturate(wd2 + wd3);
        }

        // DELAYA
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
            self.b[i] = self.bp[i];
        }
        for i in (1..3).rev() {
            self.r[i] = self.r[i - 1];
            self.p[i] = self.p[i - 1];
            self.a[i] = self.ap[i];
        }

        // FILTEP
        let wd1 = (self.a[1] * saturate(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * saturate(self.r[2] + self.r[2])) >> 15;
        self.sp = saturate(wd1 + wd2);

        // FILTEZ
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * saturate(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = saturate(sz);

        // PREDIC
        self.s = saturate(self.sp + self.sz);
    }
}

/// SCALEL / SCALEH: linear scale factor from the log one.
fn scale(nb: i32, shift_base: i32) -> i32 {
    let mantissa = ILB[((nb >> 6) & 31) as usize];
    let shift = shift_base - (nb >> 11);
    let linear = if shift < 0 { mantissa << -shift } else { mantissa >> shift };
    linear << 2
}
