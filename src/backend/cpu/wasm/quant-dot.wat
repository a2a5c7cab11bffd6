;; Quantized weight rows times activation rows quantized to 8 bits, with 128-bit SIMD: the same integer sums as
;; quant-dot.ts's JavaScript loops (exact, so their order does not matter), then the same float64 scale steps in the
;; same order, so each row's result is bit-identical to theirs.
;;
;; Every export named after its block type has the signature (w, rowBytes, rows, lv, ds, sums, out): `rows` rows of
;; blocks from byte w, rowBytes apart; one activation row's int8 levels at lv, its per-block scale d (f32) at ds (for
;; q8_1, Q4_1's and Q5_1's, d then s, the block's level sum times d) and, for the k-quants, each block's 16 sums of
;; 16 levels then 8 sums of 32 (i16, 48 bytes) at sums; one f32 result per row from out. The memory starts with the
;; f32 value of every half (65536 × 4 bytes from address 0), so a block's half scale is one load.
;;
;; The four-token exports (`q8_0_x4`, `q4_0_x4`, `q4_k_x4`, `q5_k_x4`, `q6_k_x4`, for prefill) add (lvStride, dsStride, sumsStride, scratch): four
;; activation rows, token t's levels, scales and sums t strides after the first token's; row r's four results, in
;; token order, at out + 16r. Each piece of a block is unpacked once for the four tokens, then each token's products
;; follow as in the single-token kernel. A token's running sums stay in locals but are also stored to scratch (64
;; bytes) after every update: the store keeps V8 from loading all four tokens' activations ahead of their products
;; (they would not fit the registers). Two tokens' f64 steps go at a time in f64x2 lanes, each lane the single-token
;; kernel's operations in its order, so the results are bit-identical to it.
(module
  (import "env" "memory" (memory 1 32768 shared))

  ;; The half at address p, as f64.
  (func $half (param $p i32) (result f64)
    (f64.promote_f32 (f32.load (i32.shl (i32.load16_u (local.get $p)) (i32.const 2)))))

  ;; The four i32 lanes of v added.
  (func $hsum (param $v v128) (result i32)
    (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $v)) (i32x4.extract_lane 1 (local.get $v)))
      (i32.add (i32x4.extract_lane 2 (local.get $v)) (i32x4.extract_lane 3 (local.get $v)))))

  ;; The high nibble of each byte. V8 has no x86 instruction for i8x16.shr_u and emulates it; a 16-bit shift and a
  ;; mask is cheaper (8% on Q4_K rows). The kernels' other byte shifts are 16-bit shifts too, wherever the bits they
  ;; keep afterwards (a mask follows) all come from the byte itself.
  (func $hi4 (param $v v128) (result v128)
    (v128.and (i16x8.shr_u (local.get $v) (i32.const 4))
              (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))

  ;; Lane l of an i16x8 in every lane: i8x16.swizzle's indices 2l, 2l + 1 in each lane. The relaxed build swaps in
  ;; i8x16.relaxed_swizzle (one pshufb: indices all in range, so its result is exact); the plain swizzle adds a
  ;; range fix-up.
  (func $lane16 (param $v v128) (param $l i32) (result v128)
    (i8x16.swizzle (local.get $v) (i16x8.splat (i32.add (i32.mul (local.get $l) (i32.const 0x0202)) (i32.const 0x0100)))))

  ;; The fifth bits of 16 Q5 values, bits 0..15 of $qh, as 16 bytes of 0 or 16: byte j takes byte j / 8 of $qh and
  ;; keeps bit j mod 8.
  (func $bit5 (param $qh i32) (result v128)
    (v128.and
      (i8x16.eq
        (v128.and (i8x16.swizzle (i32x4.splat (local.get $qh))
                                 (v128.const i8x16 0 0 0 0 0 0 0 0 1 1 1 1 1 1 1 1))
                  (v128.const i8x16 1 2 4 8 16 32 64 -128 1 2 4 8 16 32 64 -128))
        (v128.const i8x16 1 2 4 8 16 32 64 -128 1 2 4 8 16 32 64 -128))
      (v128.const i8x16 16 16 16 16 16 16 16 16 16 16 16 16 16 16 16 16)))

  ;; Q4_K's and Q5_K's 12 scale bytes (at p + 4) unpacked as ggml does: bytes 0..7 the sub-blocks' 6-bit scales,
  ;; bytes 8..15 their mins.
  (func $kScales (param $p i32) (result v128)
    (call $kScaleWords (i32.load offset=4 (local.get $p)) (i32.load offset=8 (local.get $p))
                       (i32.load offset=12 (local.get $p))))

  (func $kScaleWords (param $u0 i32) (param $u1 i32) (param $u2 i32) (result v128)
    (i32x4.replace_lane 3 (i32x4.replace_lane 2 (i32x4.replace_lane 1 (i32x4.splat
      (i32.and (local.get $u0) (i32.const 0x3f3f3f3f)))
      (i32.or (i32.and (local.get $u2) (i32.const 0x0f0f0f0f))
              (i32.shl (i32.and (i32.shr_u (local.get $u0) (i32.const 6)) (i32.const 0x03030303)) (i32.const 4))))
      (i32.and (local.get $u1) (i32.const 0x3f3f3f3f)))
      (i32.or (i32.and (i32.shr_u (local.get $u2) (i32.const 4)) (i32.const 0x0f0f0f0f))
              (i32.shl (i32.and (i32.shr_u (local.get $u1) (i32.const 6)) (i32.const 0x03030303)) (i32.const 4)))))

  ;; 16 int8 products summed in pairs as an i16x8: activation levels are within ±127, so a lane is at most 2·128·127.
  (func $mul16 (param $w v128) (param $a v128) (result v128)
    (i16x8.add (i16x8.extmul_low_i8x16_s (local.get $w) (local.get $a))
               (i16x8.extmul_high_i8x16_s (local.get $w) (local.get $a))))

  ;; $mul16 for weight levels within 0..127 (the k-quants' unsigned levels, their offsets taken off through the
  ;; activations' sums): the relaxed-SIMD build replaces it by i16x8.relaxed_dot_i8x16_i7x16_s, one pmaddubsw on x86,
  ;; which pairs other lanes; every caller sums all eight lanes under one factor, so the result is the same.
  (func $mulu7 (param $w v128) (param $a v128) (result v128)
    (i16x8.add (i16x8.extmul_low_i8x16_s (local.get $w) (local.get $a))
               (i16x8.extmul_high_i8x16_s (local.get $w) (local.get $a))))

  ;; A Q4_1 or Q5_1 block's term: d_w · d_a · isum + m · s_a, for the block at $p (d, then m, as halves) and the
  ;; activation block's d, s at $ds.
  (func $withMin (param $p i32) (param $ds i32) (param $isum i32) (result f64)
    (f64.add
      (f64.mul (f64.mul (call $half (local.get $p)) (f64.promote_f32 (f32.load (local.get $ds))))
               (f64.convert_i32_s (local.get $isum)))
      (f64.mul (call $half (i32.add (local.get $p) (i32.const 2))) (f64.promote_f32 (f32.load offset=4 (local.get $ds))))))

  ;; The low nibble of each byte.
  (func $lo4 (param $v v128) (result v128)
    (v128.and (local.get $v) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))

  ;; Four $hsum at once: lane t the sum of $vt's lanes (the pairs interleaved and added, then their halves).
  (func $hsum4 (param $v0 v128) (param $v1 v128) (param $v2 v128) (param $v3 v128) (result v128)
    (call $halvesAdded (call $zipAdded (local.get $v0) (local.get $v1)) (call $zipAdded (local.get $v2) (local.get $v3))))

  ;; [a0 + a2, b0 + b2, a1 + a3, b1 + b3].
  (func $zipAdded (param $a v128) (param $b v128) (result v128)
    (i32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a) (local.get $b))
               (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a) (local.get $b))))

  ;; [x0 + x2, x1 + x3, y0 + y2, y1 + y3].
  (func $halvesAdded (param $x v128) (param $y v128) (result v128)
    (i32x4.add (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $x) (local.get $y))
               (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $x) (local.get $y))))

  ;; Lanes 2 and 3 of v in lanes 0 and 1 (the second pair of tokens, for f64x2.convert_low_i32x4_s).
  (func $high64 (param $v v128) (result v128)
    (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v)))

  ;; Two tokens' f32 block scales d_a, at $p and $q, as f64x2.
  (func $pairAt (param $p i32) (param $q i32) (result v128)
    (f64x2.replace_lane 1 (f64x2.splat (f64.promote_f32 (f32.load (local.get $p))))
                          (f64.promote_f32 (f32.load (local.get $q)))))

  ;; Four tokens' results, two f64x2 pairs, as f32x4 (each lane rounded as f32.demote_f64 rounds it).
  (func $f32x4Of (param $acc01 v128) (param $acc23 v128) (result v128)
    (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
      (f32x4.demote_f64x2_zero (local.get $acc01)) (f32x4.demote_f64x2_zero (local.get $acc23))))

  ;; One token's share of a Q4_K or Q5_K chunk: its 64 activations at $a against the chunk's levels (lo0, lo1 under
  ;; the scale broadcast in sc0; hi0, hi1 under sc1), as i32x4 partial sums.
  (func $kChunk (param $lo0 v128) (param $lo1 v128) (param $hi0 v128) (param $hi1 v128) (param $sc0 v128)
        (param $sc1 v128) (param $a i32) (result v128)
    (i32x4.add
      (i32x4.dot_i16x8_s (i16x8.add (call $mulu7 (local.get $lo0) (v128.load (local.get $a)))
                                    (call $mulu7 (local.get $lo1) (v128.load offset=16 (local.get $a))))
                         (local.get $sc0))
      (i32x4.dot_i16x8_s (i16x8.add (call $mulu7 (local.get $hi0) (v128.load offset=32 (local.get $a)))
                                    (call $mulu7 (local.get $hi1) (v128.load offset=48 (local.get $a))))
                         (local.get $sc1))))

  ;; Q5_K's levels: $nibbles with a fifth bit above them, bit 4 − $shift of each byte of $h (a 16-bit shift: the mask
  ;; keeps bit 4 of each byte, which comes from the byte itself).
  (func $q5kLevels (param $nibbles v128) (param $h v128) (param $shift i32) (result v128)
    (v128.or (local.get $nibbles)
             (v128.and (i16x8.shl (local.get $h) (local.get $shift))
                       (v128.const i8x16 16 16 16 16 16 16 16 16 16 16 16 16 16 16 16 16))))

  ;; Two tokens' Q4_K or Q5_K block terms d_a · (d·isum − dmin·msum), from lanes 0 and 1 of isums and msums.
  (func $kTerms (param $da v128) (param $d v128) (param $dmin v128) (param $isums v128) (param $msums v128) (result v128)
    (f64x2.mul (local.get $da)
               (f64x2.sub (f64x2.mul (local.get $d) (f64x2.convert_low_i32x4_s (local.get $isums)))
                          (f64x2.mul (local.get $dmin) (f64x2.convert_low_i32x4_s (local.get $msums))))))

  ;; Quarter i (0..3) of the Q6_K block at p covers half h = i/2 from l = 16·(i mod 2): its 16 ql bytes at
  ;; 64h + 16·(i mod 2) (and the 16 beside them at + 32), its 16 qh bytes at 128 + 32h + 16·(i mod 2), its first
  ;; scale at 192 + 8h + (i mod 2).
  (func $q6kQl (param $p i32) (param $i i32) (result i32)
    (i32.add (local.get $p) (i32.add (i32.shl (i32.shr_u (local.get $i) (i32.const 1)) (i32.const 6))
                                     (i32.shl (i32.and (local.get $i) (i32.const 1)) (i32.const 4)))))
  (func $q6kQh (param $p i32) (param $i i32) (result i32)
    (i32.add (local.get $p) (i32.add (i32.const 128) (i32.add (i32.shl (i32.shr_u (local.get $i) (i32.const 1)) (i32.const 5))
                                                              (i32.shl (i32.and (local.get $i) (i32.const 1)) (i32.const 4))))))
  (func $q6kScale (param $p i32) (param $i i32) (result i32)
    (i32.add (local.get $p) (i32.add (i32.const 192) (i32.add (i32.shl (i32.shr_u (local.get $i) (i32.const 1)) (i32.const 3))
                                                              (i32.and (local.get $i) (i32.const 1))))))

  ;; A Q6_K quarter's four vectors of levels (stored + 32), from its ql bytes, the 16 beside them (qm) and its qh
  ;; bytes: the low nibbles of ql and qm with qh's bits 0-1 and 2-3 above them, then the high nibbles with bits 4-5
  ;; and 6-7.
  (func $q6kLevels0 (param $ql v128) (param $qh v128) (result v128)
    (v128.or (call $lo4 (local.get $ql))
             (i8x16.shl (v128.and (local.get $qh) (v128.const i8x16 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3)) (i32.const 4))))
  (func $q6kLevels1 (param $qm v128) (param $qh v128) (result v128)
    (v128.or (call $lo4 (local.get $qm))
             (i8x16.shl (v128.and (local.get $qh) (v128.const i8x16 12 12 12 12 12 12 12 12 12 12 12 12 12 12 12 12))
                        (i32.const 2))))
  (func $q6kLevels2 (param $ql v128) (param $qh v128) (result v128)
    (v128.or (call $hi4 (local.get $ql))
             (v128.and (local.get $qh) (v128.const i8x16 48 48 48 48 48 48 48 48 48 48 48 48 48 48 48 48))))
  (func $q6kLevels3 (param $qm v128) (param $qh v128) (result v128)
    (v128.or (call $hi4 (local.get $qm))
             (v128.and (i16x8.shr_u (local.get $qh) (i32.const 2))
                       (v128.const i8x16 48 48 48 48 48 48 48 48 48 48 48 48 48 48 48 48))))

  ;; One token's share of a Q6_K quarter: the 16 activations at each of $a, + 32, + 64, + 96 against the quarter's
  ;; levels w0..w3, each under its scale broadcast c0..c3, as i32x4 partial sums.
  (func $q6kQuarter (param $w0 v128) (param $w1 v128) (param $w2 v128) (param $w3 v128) (param $c0 v128)
        (param $c1 v128) (param $c2 v128) (param $c3 v128) (param $a i32) (result v128)
    (i32x4.add
      (i32x4.add (i32x4.dot_i16x8_s (call $mulu7 (local.get $w0) (v128.load (local.get $a))) (local.get $c0))
                 (i32x4.dot_i16x8_s (call $mulu7 (local.get $w1) (v128.load offset=32 (local.get $a))) (local.get $c1)))
      (i32x4.add (i32x4.dot_i16x8_s (call $mulu7 (local.get $w2) (v128.load offset=64 (local.get $a))) (local.get $c2))
                 (i32x4.dot_i16x8_s (call $mulu7 (local.get $w3) (v128.load offset=96 (local.get $a))) (local.get $c3)))))

  ;; A Q6_K block's isum before its quarters, for one token: the levels go in without their offset 32, which comes off
  ;; as −32 · Σ scale · (sub-block's sum of levels), from the block's scales widened to i16 (lo: sub-blocks 0..7, hi:
  ;; 8..15) and the token's 16 sums at $s.
  (func $q6kOffset (param $lo v128) (param $hi v128) (param $s i32) (result v128)
    (i32x4.sub (v128.const i32x4 0 0 0 0) (i32x4.shl (i32x4.add
      (i32x4.dot_i16x8_s (local.get $lo) (v128.load (local.get $s)))
      (i32x4.dot_i16x8_s (local.get $hi) (v128.load offset=16 (local.get $s)))) (i32.const 5))))

  ;; Four tokens' Q4_K or Q5_K msums, lane t token t's: the block's mins (widened to i16) times each token's 8 sums
  ;; of 32 levels, from $s, sumsStride apart.
  (func $minSums4 (param $mins v128) (param $s i32) (param $sumsStride i32) (result v128)
    (call $hsum4
      (i32x4.dot_i16x8_s (local.get $mins) (v128.load offset=32 (local.get $s)))
      (i32x4.dot_i16x8_s (local.get $mins) (v128.load offset=32 (i32.add (local.get $s) (local.get $sumsStride))))
      (i32x4.dot_i16x8_s (local.get $mins) (v128.load offset=32
        (i32.add (local.get $s) (i32.shl (local.get $sumsStride) (i32.const 1)))))
      (i32x4.dot_i16x8_s (local.get $mins) (v128.load offset=32
        (i32.add (local.get $s) (i32.mul (local.get $sumsStride) (i32.const 3)))))))

  ;; One token's share of a Q8_0 block: its 32 activations at $a against the block's levels widened to i16 (w0 values
  ;; 0..7, w1 8..15, w2 16..23, w3 24..31), as i32x4 partial sums. Widened once, the levels serve every token.
  (func $q80Sum (param $w0 v128) (param $w1 v128) (param $w2 v128) (param $w3 v128) (param $a i32) (result v128)
    (i32x4.add (call $dot16 (local.get $w0) (local.get $w1) (v128.load (local.get $a)))
               (call $dot16 (local.get $w2) (local.get $w3) (v128.load offset=16 (local.get $a)))))

  ;; 16 int8 activations $a against 16 levels widened to i16 (lo: the first 8), as i32x4 partial sums.
  (func $dot16 (param $lo v128) (param $hi v128) (param $a v128) (result v128)
    (i32x4.add (i32x4.dot_i16x8_s (local.get $lo) (i16x8.extend_low_i8x16_s (local.get $a)))
               (i32x4.dot_i16x8_s (local.get $hi) (i16x8.extend_high_i8x16_s (local.get $a)))))

  ;; One token's share of a Q4_0 or Q5_0 block: its 32 activations a0, a1 against the block's unsigned levels lo
  ;; (values 0..15), hi (16..31), less $zero (the levels' offset, in every byte) times the activations, as i32x4
  ;; partial sums.
  (func $offsetSum (param $lo v128) (param $hi v128) (param $a0 v128) (param $a1 v128) (param $zero v128) (result v128)
    (i32x4.extadd_pairwise_i16x8_s (i16x8.sub
      (i16x8.add (call $mulu7 (local.get $lo) (local.get $a0)) (call $mulu7 (local.get $hi) (local.get $a1)))
      (i16x8.add (call $mulu7 (local.get $zero) (local.get $a0)) (call $mulu7 (local.get $zero) (local.get $a1))))))

  ;; One token's share of a Q4_0 block: its 32 activations at $a against the block's nibbles lo, hi.
  (func $q40Sum (param $lo v128) (param $hi v128) (param $a i32) (result v128)
    (call $offsetSum (local.get $lo) (local.get $hi) (v128.load (local.get $a)) (v128.load offset=16 (local.get $a))
                     (v128.const i8x16 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8)))

  ;; Two tokens' Q8_0, Q4_0 or Q6_K block terms d · d_a · isum, from lanes 0 and 1 of isums.
  (func $dTerms (param $d v128) (param $da v128) (param $isums v128) (result v128)
    (f64x2.mul (f64x2.mul (local.get $d) (local.get $da)) (f64x2.convert_low_i32x4_s (local.get $isums))))

  ;; Q8_0: d (half) | 32 int8 levels. acc += d_w · d_a · Σ w·a.
  (func (export "q8_0") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $acc f64)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc (f64.const 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $acc (f64.add (local.get $acc)
          (f64.mul
            (f64.mul (call $half (local.get $p)) (f64.promote_f32 (f32.load (local.get $d))))
            (f64.convert_i32_s (call $hsum (call $q80Sum
              (i16x8.extend_low_i8x16_s (v128.load offset=2 (local.get $p)))
              (i16x8.extend_high_i8x16_s (v128.load offset=2 (local.get $p)))
              (i16x8.extend_low_i8x16_s (v128.load offset=18 (local.get $p)))
              (i16x8.extend_high_i8x16_s (v128.load offset=18 (local.get $p)))
              (local.get $a)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 34)))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (br $block)))
      (f32.store (local.get $out) (f32.demote_f64 (local.get $acc)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $row))))

  ;; Q8_0 against four tokens (see the header): each block's levels loaded and its scale converted once for the four.
  (func (export "q8_0_x4") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32) (param $lvStride i32) (param $dsStride i32) (param $sumsStride i32)
        (param $scratch i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32)
    (local $acc01 v128) (local $acc23 v128) (local $isums v128) (local $dw v128) (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128)
    (local $isum0 v128) (local $isum1 v128) (local $isum2 v128) (local $isum3 v128)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 4))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc01 (v128.const f64x2 0 0))
      (local.set $acc23 (v128.const f64x2 0 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $w0 (i16x8.extend_low_i8x16_s (v128.load offset=2 (local.get $p))))
        (local.set $w1 (i16x8.extend_high_i8x16_s (v128.load offset=2 (local.get $p))))
        (local.set $w2 (i16x8.extend_low_i8x16_s (v128.load offset=18 (local.get $p))))
        (local.set $w3 (i16x8.extend_high_i8x16_s (v128.load offset=18 (local.get $p))))
        (local.set $isum0 (call $q80Sum (local.get $w0) (local.get $w1) (local.get $w2) (local.get $w3) (local.get $a)))
        (v128.store (local.get $scratch) (local.get $isum0))
        (local.set $isum1 (call $q80Sum (local.get $w0) (local.get $w1) (local.get $w2) (local.get $w3) (i32.add (local.get $a) (local.get $lvStride))))
        (v128.store offset=16 (local.get $scratch) (local.get $isum1))
        (local.set $isum2 (call $q80Sum (local.get $w0) (local.get $w1) (local.get $w2) (local.get $w3)
          (i32.add (local.get $a) (i32.shl (local.get $lvStride) (i32.const 1)))))
        (v128.store offset=32 (local.get $scratch) (local.get $isum2))
        (local.set $isum3 (call $q80Sum (local.get $w0) (local.get $w1) (local.get $w2) (local.get $w3)
          (i32.add (local.get $a) (i32.mul (local.get $lvStride) (i32.const 3)))))
        (v128.store offset=48 (local.get $scratch) (local.get $isum3))
        (local.set $isums (call $hsum4 (local.get $isum0) (local.get $isum1) (local.get $isum2) (local.get $isum3)))
        (local.set $dw (f64x2.splat (call $half (local.get $p))))
        (local.set $acc01 (f64x2.add (local.get $acc01) (call $dTerms (local.get $dw)
          (call $pairAt (local.get $d) (i32.add (local.get $d) (local.get $dsStride))) (local.get $isums))))
        (local.set $acc23 (f64x2.add (local.get $acc23) (call $dTerms (local.get $dw)
          (call $pairAt (i32.add (local.get $d) (i32.shl (local.get $dsStride) (i32.const 1)))
                        (i32.add (local.get $d) (i32.mul (local.get $dsStride) (i32.const 3))))
          (call $high64 (local.get $isums)))))
        (local.set $p (i32.add (local.get $p) (i32.const 34)))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (br $block)))
      (v128.store (local.get $out) (call $f32x4Of (local.get $acc01) (local.get $acc23)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 16)))
      (br $row))))

  ;; Q4_0: d (half) | 16 bytes, value j the low nibble of byte j, value j + 16 its high nibble, levels stored + 8. The
  ;; levels go in unsigned (for relaxed SIMD's dot) and the offset comes off as 8 · the activations' sum, as in Q5_0.
  (func (export "q4_0") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $acc f64)
    (local $q v128)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc (f64.const 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $q (v128.load offset=2 (local.get $p)))
        (local.set $acc (f64.add (local.get $acc)
          (f64.mul
            (f64.mul (call $half (local.get $p)) (f64.promote_f32 (f32.load (local.get $d))))
            (f64.convert_i32_s (call $hsum
              (call $q40Sum (call $lo4 (local.get $q)) (call $hi4 (local.get $q)) (local.get $a)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 18)))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (br $block)))
      (f32.store (local.get $out) (f32.demote_f64 (local.get $acc)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $row))))

  ;; Q4_0 against four tokens (see the header): each block's nibbles unpacked and its scale converted once for the
  ;; four.
  (func (export "q4_0_x4") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32) (param $lvStride i32) (param $dsStride i32) (param $sumsStride i32)
        (param $scratch i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32)
    (local $acc01 v128) (local $acc23 v128) (local $isums v128) (local $dw v128) (local $q v128) (local $lo v128)
    (local $hi v128) (local $isum0 v128) (local $isum1 v128) (local $isum2 v128) (local $isum3 v128)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 4))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc01 (v128.const f64x2 0 0))
      (local.set $acc23 (v128.const f64x2 0 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $q (v128.load offset=2 (local.get $p)))
        (local.set $lo (call $lo4 (local.get $q)))
        (local.set $hi (call $hi4 (local.get $q)))
        (local.set $isum0 (call $q40Sum (local.get $lo) (local.get $hi) (local.get $a)))
        (v128.store (local.get $scratch) (local.get $isum0))
        (local.set $isum1 (call $q40Sum (local.get $lo) (local.get $hi) (i32.add (local.get $a) (local.get $lvStride))))
        (v128.store offset=16 (local.get $scratch) (local.get $isum1))
        (local.set $isum2 (call $q40Sum (local.get $lo) (local.get $hi)
          (i32.add (local.get $a) (i32.shl (local.get $lvStride) (i32.const 1)))))
        (v128.store offset=32 (local.get $scratch) (local.get $isum2))
        (local.set $isum3 (call $q40Sum (local.get $lo) (local.get $hi)
          (i32.add (local.get $a) (i32.mul (local.get $lvStride) (i32.const 3)))))
        (v128.store offset=48 (local.get $scratch) (local.get $isum3))
        (local.set $isums (call $hsum4 (local.get $isum0) (local.get $isum1) (local.get $isum2) (local.get $isum3)))
        (local.set $dw (f64x2.splat (call $half (local.get $p))))
        (local.set $acc01 (f64x2.add (local.get $acc01) (call $dTerms (local.get $dw)
          (call $pairAt (local.get $d) (i32.add (local.get $d) (local.get $dsStride))) (local.get $isums))))
        (local.set $acc23 (f64x2.add (local.get $acc23) (call $dTerms (local.get $dw)
          (call $pairAt (i32.add (local.get $d) (i32.shl (local.get $dsStride) (i32.const 1)))
                        (i32.add (local.get $d) (i32.mul (local.get $dsStride) (i32.const 3))))
          (call $high64 (local.get $isums)))))
        (local.set $p (i32.add (local.get $p) (i32.const 18)))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (br $block)))
      (v128.store (local.get $out) (call $f32x4Of (local.get $acc01) (local.get $acc23)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 16)))
      (br $row))))

  ;; Q4_1: d (half) | m (half) | 16 bytes as Q4_0's, levels unsigned. acc += d_w · d_a · Σ w·a + m · s_a.
  (func (export "q4_1") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $acc f64)
    (local $q v128)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc (f64.const 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $q (v128.load offset=4 (local.get $p)))
        (local.set $acc (f64.add (local.get $acc) (call $withMin (local.get $p) (local.get $d)
          (call $hsum (i32x4.extadd_pairwise_i16x8_s (i16x8.add
            (call $mulu7 (v128.and (local.get $q) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
                         (v128.load (local.get $a)))
            (call $mulu7 (call $hi4 (local.get $q)) (v128.load offset=16 (local.get $a)))))))))
        (local.set $p (i32.add (local.get $p) (i32.const 20)))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (local.set $d (i32.add (local.get $d) (i32.const 8)))
        (br $block)))
      (f32.store (local.get $out) (f32.demote_f64 (local.get $acc)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $row))))

  ;; Q5_0: d (half) | qh (u32: bit j the fifth bit of value j) | 16 bytes as Q4_0's, levels stored + 16. The levels go
  ;; in unsigned (for relaxed SIMD's dot) and the offset comes off as 16 · the activations' sum, by the same products.
  (func (export "q5_0") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $acc f64)
    (local $q v128) (local $qh i32)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc (f64.const 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $q (v128.load offset=6 (local.get $p)))
        (local.set $qh (i32.load offset=2 (local.get $p)))
        (local.set $acc (f64.add (local.get $acc)
          (f64.mul
            (f64.mul (call $half (local.get $p)) (f64.promote_f32 (f32.load (local.get $d))))
            (f64.convert_i32_s (call $hsum (call $offsetSum
              (v128.or (call $lo4 (local.get $q)) (call $bit5 (local.get $qh)))
              (v128.or (call $hi4 (local.get $q)) (call $bit5 (i32.shr_u (local.get $qh) (i32.const 16))))
              (v128.load (local.get $a)) (v128.load offset=16 (local.get $a))
              (v128.const i8x16 16 16 16 16 16 16 16 16 16 16 16 16 16 16 16 16)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 22)))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (br $block)))
      (f32.store (local.get $out) (f32.demote_f64 (local.get $acc)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $row))))

  ;; Q5_1: d (half) | m (half) | qh (u32) | 16 bytes, as Q5_0's with levels unsigned. acc as Q4_1.
  (func (export "q5_1") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $acc f64)
    (local $q v128) (local $qh i32)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc (f64.const 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $q (v128.load offset=8 (local.get $p)))
        (local.set $qh (i32.load offset=4 (local.get $p)))
        (local.set $acc (f64.add (local.get $acc) (call $withMin (local.get $p) (local.get $d)
          (call $hsum (i32x4.extadd_pairwise_i16x8_s (i16x8.add
            (call $mulu7 (v128.or (v128.and (local.get $q) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
                                  (call $bit5 (local.get $qh)))
                         (v128.load (local.get $a)))
            (call $mulu7 (v128.or (call $hi4 (local.get $q)) (call $bit5 (i32.shr_u (local.get $qh) (i32.const 16))))
                         (v128.load offset=16 (local.get $a)))))))))
        (local.set $p (i32.add (local.get $p) (i32.const 24)))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (local.set $d (i32.add (local.get $d) (i32.const 8)))
        (br $block)))
      (f32.store (local.get $out) (f32.demote_f64 (local.get $acc)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $row))))

  ;; Q2_K (84 bytes): scales[16] (a sub-block's scale in the low nibble, its min in the high one) | qs[64] | d | dmin.
  ;; Value 128h + 32k + l is bits 2k, 2k + 1 of qs[32h + l]; sub-block (value / 16) weights it by its scale and takes
  ;; min × (its 16 levels' sum) off. acc += d_a · (d·isum − dmin·msum), as Q4_K.
  (func (export "q2_k") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $s i32)
    (local $acc f64) (local $sc v128) (local $isum v128) (local $q0 v128) (local $q1 v128) (local $i i32) (local $j i32)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc (f64.const 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (local.set $s (local.get $sums))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $sc (v128.load (local.get $p)))
        (local.set $isum (v128.const i32x4 0 0 0 0))
        ;; i = 4h + k: 2-bit levels k of half h; sub-blocks j = 2i and 2i + 1 (the scale index is 8h + 2k = 2i).
        (local.set $i (i32.const 0))
        (loop $quarter
          (if (i32.eqz (i32.and (local.get $i) (i32.const 3)))
            (then
              (local.set $q0 (v128.load offset=16 (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 3)))))
              (local.set $q1 (v128.load offset=32 (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 3)))))))
          (local.set $j (i32.shl (local.get $i) (i32.const 1)))
          (local.set $isum (i32x4.add (local.get $isum) (i32x4.add
            (i32x4.dot_i16x8_s
              (call $mulu7 (v128.and (local.get $q0) (v128.const i8x16 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3))
                           (v128.load (local.get $a)))
              (v128.and (i8x16.swizzle (local.get $sc) (i16x8.splat (i32.or (local.get $j) (i32.const 0x8000))))
                        (v128.const i16x8 15 15 15 15 15 15 15 15)))
            (i32x4.dot_i16x8_s
              (call $mulu7 (v128.and (local.get $q1) (v128.const i8x16 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3))
                           (v128.load offset=16 (local.get $a)))
              (v128.and (i8x16.swizzle (local.get $sc) (i16x8.splat (i32.or (local.get $j) (i32.const 0x8001))))
                        (v128.const i16x8 15 15 15 15 15 15 15 15))))))
          (local.set $q0 (i16x8.shr_u (local.get $q0) (i32.const 2)))
          (local.set $q1 (i16x8.shr_u (local.get $q1) (i32.const 2)))
          (local.set $a (i32.add (local.get $a) (i32.const 32)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $quarter (i32.lt_u (local.get $i) (i32.const 8))))
        (local.set $acc (f64.add (local.get $acc) (f64.mul
          (f64.promote_f32 (f32.load (local.get $d)))
          (f64.sub
            (f64.mul (call $half (i32.add (local.get $p) (i32.const 80)))
                     (f64.convert_i32_s (call $hsum (local.get $isum))))
            (f64.mul (call $half (i32.add (local.get $p) (i32.const 82)))
                     (f64.convert_i32_s (call $hsum (i32x4.add
                       (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_u (call $hi4 (local.get $sc)))
                                          (v128.load (local.get $s)))
                       (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u (call $hi4 (local.get $sc)))
                                          (v128.load offset=16 (local.get $s)))))))))))
        (local.set $p (i32.add (local.get $p) (i32.const 84)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (local.set $s (i32.add (local.get $s) (i32.const 48)))
        (br $block)))
      (f32.store (local.get $out) (f32.demote_f64 (local.get $acc)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $row))))

  ;; Q3_K (110 bytes): hmask[32] | qs[64] | scales[12] | d. Value 128h + 32k + l is bits 2k, 2k + 1 of qs[32h + l]
  ;; with bit 4h + k of hmask[l] above them, stored + 4; sub-block j's 6-bit scale (stored + 32) is the low or high
  ;; nibble of scales[j mod 8] with two bits of scales[8 + j mod 4] above. acc += d · d_a · Σ scale·Σ (q − 4)·a.
  (func (export "q3_k") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $acc f64)
    (local $s i32) (local $u0 i32) (local $u1 i32) (local $u2 i32) (local $lo v128) (local $hi v128) (local $sc v128)
    (local $isum v128) (local $q0 v128) (local $q1 v128) (local $m0 v128) (local $m1 v128) (local $i i32) (local $j i32)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc (f64.const 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (local.set $s (local.get $sums))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        ;; ggml's unpacking of the 12 scale bytes into 16 bytes, then − 32 and widened to i16: $lo sub-blocks 0..7,
        ;; $hi 8..15.
        (local.set $u0 (i32.load offset=96 (local.get $p)))
        (local.set $u1 (i32.load offset=100 (local.get $p)))
        (local.set $u2 (i32.load offset=104 (local.get $p)))
        (local.set $sc (i8x16.sub
          (i32x4.replace_lane 3 (i32x4.replace_lane 2 (i32x4.replace_lane 1 (i32x4.splat
            (i32.or (i32.and (local.get $u0) (i32.const 0x0f0f0f0f))
                    (i32.shl (i32.and (local.get $u2) (i32.const 0x03030303)) (i32.const 4))))
            (i32.or (i32.and (local.get $u1) (i32.const 0x0f0f0f0f))
                    (i32.shl (i32.and (i32.shr_u (local.get $u2) (i32.const 2)) (i32.const 0x03030303)) (i32.const 4))))
            (i32.or (i32.and (i32.shr_u (local.get $u0) (i32.const 4)) (i32.const 0x0f0f0f0f))
                    (i32.shl (i32.and (i32.shr_u (local.get $u2) (i32.const 4)) (i32.const 0x03030303)) (i32.const 4))))
            (i32.or (i32.and (i32.shr_u (local.get $u1) (i32.const 4)) (i32.const 0x0f0f0f0f))
                    (i32.shl (i32.and (i32.shr_u (local.get $u2) (i32.const 6)) (i32.const 0x03030303)) (i32.const 4))))
          (v128.const i8x16 32 32 32 32 32 32 32 32 32 32 32 32 32 32 32 32)))
        (local.set $lo (i16x8.extend_low_i8x16_s (local.get $sc)))
        (local.set $hi (i16x8.extend_high_i8x16_s (local.get $sc)))
        ;; The levels go in without their offset 4: it comes off here as 4 · Σ scale · (sub-block's sum of levels).
        (local.set $isum (i32x4.sub (v128.const i32x4 0 0 0 0) (i32x4.shl (i32x4.add
          (i32x4.dot_i16x8_s (local.get $lo) (v128.load (local.get $s)))
          (i32x4.dot_i16x8_s (local.get $hi) (v128.load offset=16 (local.get $s)))) (i32.const 2))))
        (local.set $m0 (v128.load (local.get $p)))
        (local.set $m1 (v128.load offset=16 (local.get $p)))
        ;; i = 4h + k as in Q2_K; the scales of sub-blocks 2i, 2i + 1 are i16 lanes 2k, 2k + 1 of $lo (h = 0) or $hi.
        (local.set $i (i32.const 0))
        (loop $quarter
          (if (i32.eqz (i32.and (local.get $i) (i32.const 3)))
            (then
              (local.set $q0 (v128.load offset=32 (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 3)))))
              (local.set $q1 (v128.load offset=48 (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 3)))))))
          (if (i32.eq (local.get $i) (i32.const 4)) (then (local.set $lo (local.get $hi))))
          ;; Byte indices 4k, 4k + 1 broadcast lane 2k; 4k + 2, 4k + 3 lane 2k + 1.
          (local.set $j (i32.shl (i32.and (local.get $i) (i32.const 3)) (i32.const 2)))
          (local.set $isum (i32x4.add (local.get $isum) (i32x4.add
            (i32x4.dot_i16x8_s
              (call $mulu7
                (v128.or (v128.and (local.get $q0) (v128.const i8x16 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3))
                                    (i8x16.shl (v128.and (local.get $m0) (v128.const i8x16 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1)) (i32.const 2)))
                (v128.load (local.get $a)))
              (i8x16.swizzle (local.get $lo)
                (i16x8.splat (i32.or (local.get $j) (i32.shl (i32.add (local.get $j) (i32.const 1)) (i32.const 8))))))
            (i32x4.dot_i16x8_s
              (call $mulu7
                (v128.or (v128.and (local.get $q1) (v128.const i8x16 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3))
                                    (i8x16.shl (v128.and (local.get $m1) (v128.const i8x16 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1)) (i32.const 2)))
                (v128.load offset=16 (local.get $a)))
              (i8x16.swizzle (local.get $lo)
                (i16x8.splat (i32.or (i32.add (local.get $j) (i32.const 2))
                                     (i32.shl (i32.add (local.get $j) (i32.const 3)) (i32.const 8)))))))))
          (local.set $q0 (i16x8.shr_u (local.get $q0) (i32.const 2)))
          (local.set $q1 (i16x8.shr_u (local.get $q1) (i32.const 2)))
          (local.set $m0 (i16x8.shr_u (local.get $m0) (i32.const 1)))
          (local.set $m1 (i16x8.shr_u (local.get $m1) (i32.const 1)))
          (local.set $a (i32.add (local.get $a) (i32.const 32)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $quarter (i32.lt_u (local.get $i) (i32.const 8))))
        (local.set $acc (f64.add (local.get $acc) (f64.mul
          (f64.mul (call $half (i32.add (local.get $p) (i32.const 108))) (f64.promote_f32 (f32.load (local.get $d))))
          (f64.convert_i32_s (call $hsum (local.get $isum))))))
        (local.set $p (i32.add (local.get $p) (i32.const 110)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (local.set $s (i32.add (local.get $s) (i32.const 48)))
        (br $block)))
      (f32.store (local.get $out) (f32.demote_f64 (local.get $acc)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $row))))

  ;; Q4_K (144 bytes): d | dmin (halves) | 12 bytes of 6-bit scales and mins | 128 bytes of nibbles, chunk c of 32
  ;; bytes holding values 64c + l (low nibble) and 64c + 32 + l (high nibble). Σ over sub-blocks j of scale_j·Σ q·a
  ;; is isum, Σ min_j·(sum of sub-block j's levels) is msum; acc += d_a · (d·isum − dmin·msum).
  (func (export "q4_k") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $s i32)
    (local $acc f64)
    (local $scales v128) (local $sc16 v128) (local $isum v128) (local $q0 v128) (local $q1 v128) (local $c i32)
    (local $j i32)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc (f64.const 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (local.set $s (local.get $sums))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $scales (call $kScales (local.get $p)))
        (local.set $sc16 (i16x8.extend_low_i8x16_u (local.get $scales)))
        (local.set $isum (v128.const i32x4 0 0 0 0))
        (local.set $c (i32.const 0))
        (loop $chunk
          (local.set $q0 (v128.load offset=16 (local.get $p)))
          (local.set $q1 (v128.load offset=32 (local.get $p)))
          (local.set $j (i32.shl (local.get $c) (i32.const 1)))
          ;; Low nibbles with the chunk's first 32 levels under scale 2c, high nibbles with the next 32 under 2c + 1
          ;; (each scale broadcast to every i16 lane from the scales widened to i16).
          (local.set $isum (i32x4.add (local.get $isum) (call $kChunk
            (call $lo4 (local.get $q0)) (call $lo4 (local.get $q1)) (call $hi4 (local.get $q0)) (call $hi4 (local.get $q1))
            (call $lane16 (local.get $sc16) (local.get $j))
            (call $lane16 (local.get $sc16) (i32.add (local.get $j) (i32.const 1)))
            (local.get $a))))
          (local.set $p (i32.add (local.get $p) (i32.const 32)))
          (local.set $a (i32.add (local.get $a) (i32.const 64)))
          (local.set $c (i32.add (local.get $c) (i32.const 1)))
          (br_if $chunk (i32.lt_u (local.get $c) (i32.const 4))))
        ;; $p and $a advanced by 128 and 256 over the chunks.
        (local.set $p (i32.sub (local.get $p) (i32.const 128)))
        (local.set $acc (f64.add (local.get $acc) (f64.mul
          (f64.promote_f32 (f32.load (local.get $d)))
          (f64.sub
            (f64.mul (call $half (local.get $p)) (f64.convert_i32_s (call $hsum (local.get $isum))))
            (f64.mul (call $half (i32.add (local.get $p) (i32.const 2)))
                     (f64.convert_i32_s (call $hsum (i32x4.dot_i16x8_s
                       (i16x8.extend_high_i8x16_u (local.get $scales))
                       (v128.load offset=32 (local.get $s))))))))))
        (local.set $p (i32.add (local.get $p) (i32.const 144)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (local.set $s (i32.add (local.get $s) (i32.const 48)))
        (br $block)))
      (f32.store (local.get $out) (f32.demote_f64 (local.get $acc)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $row))))

  ;; Q4_K against four tokens (see the header): each chunk's nibbles and scale broadcasts unpacked once for the four.
  (func (export "q4_k_x4") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32) (param $lvStride i32) (param $dsStride i32) (param $sumsStride i32)
        (param $scratch i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $s i32) (local $c i32)
    (local $acc01 v128) (local $acc23 v128) (local $scales v128) (local $sc16 v128) (local $mins v128)
    (local $isums v128) (local $msums v128) (local $dw v128) (local $dmin v128)
    (local $isum0 v128) (local $isum1 v128) (local $isum2 v128) (local $isum3 v128)
    (local $q0 v128) (local $q1 v128) (local $lo0 v128) (local $lo1 v128) (local $hi0 v128) (local $hi1 v128)
    (local $sc0 v128) (local $sc1 v128)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 4))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc01 (v128.const f64x2 0 0))
      (local.set $acc23 (v128.const f64x2 0 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (local.set $s (local.get $sums))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $scales (call $kScales (local.get $p)))
        (local.set $sc16 (i16x8.extend_low_i8x16_u (local.get $scales)))
        (local.set $isum0 (v128.const i32x4 0 0 0 0))
        (local.set $isum1 (v128.const i32x4 0 0 0 0))
        (local.set $isum2 (v128.const i32x4 0 0 0 0))
        (local.set $isum3 (v128.const i32x4 0 0 0 0))
        (local.set $c (i32.const 0))
        (loop $chunk
          (local.set $q0 (v128.load offset=16 (local.get $p)))
          (local.set $q1 (v128.load offset=32 (local.get $p)))
          (local.set $lo0 (call $lo4 (local.get $q0)))
          (local.set $lo1 (call $lo4 (local.get $q1)))
          (local.set $hi0 (call $hi4 (local.get $q0)))
          (local.set $hi1 (call $hi4 (local.get $q1)))
          ;; Scales 2c and 2c + 1 are lanes 0 and 1 of $sc16, which turns by two lanes a chunk (constant broadcasts).
          (local.set $sc0 (call $lane16 (local.get $sc16) (i32.const 0)))
          (local.set $sc1 (call $lane16 (local.get $sc16) (i32.const 1)))
          (local.set $sc16 (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 0 1 2 3 (local.get $sc16) (local.get $sc16)))
          (local.set $isum0 (i32x4.add (local.get $isum0) (call $kChunk (local.get $lo0) (local.get $lo1)
            (local.get $hi0) (local.get $hi1) (local.get $sc0) (local.get $sc1) (local.get $a))))
          (v128.store (local.get $scratch) (local.get $isum0))
          (local.set $isum1 (i32x4.add (local.get $isum1) (call $kChunk (local.get $lo0) (local.get $lo1)
            (local.get $hi0) (local.get $hi1) (local.get $sc0) (local.get $sc1)
            (i32.add (local.get $a) (local.get $lvStride)))))
          (v128.store offset=16 (local.get $scratch) (local.get $isum1))
          (local.set $isum2 (i32x4.add (local.get $isum2) (call $kChunk (local.get $lo0) (local.get $lo1)
            (local.get $hi0) (local.get $hi1) (local.get $sc0) (local.get $sc1)
            (i32.add (local.get $a) (i32.shl (local.get $lvStride) (i32.const 1))))))
          (v128.store offset=32 (local.get $scratch) (local.get $isum2))
          (local.set $isum3 (i32x4.add (local.get $isum3) (call $kChunk (local.get $lo0) (local.get $lo1)
            (local.get $hi0) (local.get $hi1) (local.get $sc0) (local.get $sc1)
            (i32.add (local.get $a) (i32.mul (local.get $lvStride) (i32.const 3))))))
          (v128.store offset=48 (local.get $scratch) (local.get $isum3))
          (local.set $p (i32.add (local.get $p) (i32.const 32)))
          (local.set $a (i32.add (local.get $a) (i32.const 64)))
          (local.set $c (i32.add (local.get $c) (i32.const 1)))
          (br_if $chunk (i32.lt_u (local.get $c) (i32.const 4))))
        (local.set $p (i32.sub (local.get $p) (i32.const 128)))
        (local.set $mins (i16x8.extend_high_i8x16_u (local.get $scales)))
        (local.set $isums (call $hsum4 (local.get $isum0) (local.get $isum1) (local.get $isum2) (local.get $isum3)))
        (local.set $msums (call $minSums4 (local.get $mins) (local.get $s) (local.get $sumsStride)))
        (local.set $dw (f64x2.splat (call $half (local.get $p))))
        (local.set $dmin (f64x2.splat (call $half (i32.add (local.get $p) (i32.const 2)))))
        (local.set $acc01 (f64x2.add (local.get $acc01) (call $kTerms
          (call $pairAt (local.get $d) (i32.add (local.get $d) (local.get $dsStride)))
          (local.get $dw) (local.get $dmin) (local.get $isums) (local.get $msums))))
        (local.set $acc23 (f64x2.add (local.get $acc23) (call $kTerms
          (call $pairAt (i32.add (local.get $d) (i32.shl (local.get $dsStride) (i32.const 1)))
                        (i32.add (local.get $d) (i32.mul (local.get $dsStride) (i32.const 3))))
          (local.get $dw) (local.get $dmin) (call $high64 (local.get $isums)) (call $high64 (local.get $msums)))))
        (local.set $p (i32.add (local.get $p) (i32.const 144)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (local.set $s (i32.add (local.get $s) (i32.const 48)))
        (br $block)))
      (v128.store (local.get $out) (call $f32x4Of (local.get $acc01) (local.get $acc23)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 16)))
      (br $row))))

  ;; Q5_K (176 bytes): Q4_K's d | dmin | scales, then qh[32] | qs[128]: Q4_K's nibbles with a fifth bit, bit j of
  ;; qh[l] for sub-block j's value l (so chunk c takes bits 2c and 2c + 1: the qh vectors shift right by 2 a chunk).
  (func (export "q5_k") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $s i32)
    (local $acc f64)
    (local $scales v128) (local $sc16 v128) (local $isum v128) (local $q0 v128) (local $q1 v128) (local $h0 v128) (local $h1 v128)
    (local $c i32) (local $j i32)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc (f64.const 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (local.set $s (local.get $sums))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $scales (call $kScales (local.get $p)))
        (local.set $h0 (v128.load offset=16 (local.get $p)))
        (local.set $h1 (v128.load offset=32 (local.get $p)))
        (local.set $sc16 (i16x8.extend_low_i8x16_u (local.get $scales)))
        (local.set $isum (v128.const i32x4 0 0 0 0))
        (local.set $c (i32.const 0))
        (loop $chunk
          (local.set $q0 (v128.load offset=48 (local.get $p)))
          (local.set $q1 (v128.load offset=64 (local.get $p)))
          (local.set $j (i32.shl (local.get $c) (i32.const 1)))
          ;; Chunk c's fifth bits are bits 2c (low nibbles) and 2c + 1 (high) of qh: bits 0 and 1 of $h0, $h1 here.
          (local.set $isum (i32x4.add (local.get $isum) (call $kChunk
            (call $q5kLevels (call $lo4 (local.get $q0)) (local.get $h0) (i32.const 4))
            (call $q5kLevels (call $lo4 (local.get $q1)) (local.get $h1) (i32.const 4))
            (call $q5kLevels (call $hi4 (local.get $q0)) (local.get $h0) (i32.const 3))
            (call $q5kLevels (call $hi4 (local.get $q1)) (local.get $h1) (i32.const 3))
            (call $lane16 (local.get $sc16) (local.get $j))
            (call $lane16 (local.get $sc16) (i32.add (local.get $j) (i32.const 1)))
            (local.get $a))))
          (local.set $h0 (i16x8.shr_u (local.get $h0) (i32.const 2)))
          (local.set $h1 (i16x8.shr_u (local.get $h1) (i32.const 2)))
          (local.set $p (i32.add (local.get $p) (i32.const 32)))
          (local.set $a (i32.add (local.get $a) (i32.const 64)))
          (local.set $c (i32.add (local.get $c) (i32.const 1)))
          (br_if $chunk (i32.lt_u (local.get $c) (i32.const 4))))
        (local.set $p (i32.sub (local.get $p) (i32.const 128)))
        (local.set $acc (f64.add (local.get $acc) (f64.mul
          (f64.promote_f32 (f32.load (local.get $d)))
          (f64.sub
            (f64.mul (call $half (local.get $p)) (f64.convert_i32_s (call $hsum (local.get $isum))))
            (f64.mul (call $half (i32.add (local.get $p) (i32.const 2)))
                     (f64.convert_i32_s (call $hsum (i32x4.dot_i16x8_s
                       (i16x8.extend_high_i8x16_u (local.get $scales))
                       (v128.load offset=32 (local.get $s))))))))))
        (local.set $p (i32.add (local.get $p) (i32.const 176)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (local.set $s (i32.add (local.get $s) (i32.const 48)))
        (br $block)))
      (f32.store (local.get $out) (f32.demote_f64 (local.get $acc)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $row))))

  ;; Q5_K against four tokens (see the header): each chunk's levels and scale broadcasts unpacked once for the four.
  (func (export "q5_k_x4") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32) (param $lvStride i32) (param $dsStride i32) (param $sumsStride i32)
        (param $scratch i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $s i32) (local $c i32)
    (local $acc01 v128) (local $acc23 v128) (local $scales v128) (local $sc16 v128)
    (local $isums v128) (local $msums v128) (local $dw v128) (local $dmin v128)
    (local $isum0 v128) (local $isum1 v128) (local $isum2 v128) (local $isum3 v128)
    (local $q0 v128) (local $q1 v128) (local $h0 v128) (local $h1 v128)
    (local $lo0 v128) (local $lo1 v128) (local $hi0 v128) (local $hi1 v128) (local $sc0 v128) (local $sc1 v128)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 4))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc01 (v128.const f64x2 0 0))
      (local.set $acc23 (v128.const f64x2 0 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (local.set $s (local.get $sums))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $scales (call $kScales (local.get $p)))
        (local.set $sc16 (i16x8.extend_low_i8x16_u (local.get $scales)))
        (local.set $h0 (v128.load offset=16 (local.get $p)))
        (local.set $h1 (v128.load offset=32 (local.get $p)))
        (local.set $isum0 (v128.const i32x4 0 0 0 0))
        (local.set $isum1 (v128.const i32x4 0 0 0 0))
        (local.set $isum2 (v128.const i32x4 0 0 0 0))
        (local.set $isum3 (v128.const i32x4 0 0 0 0))
        (local.set $c (i32.const 0))
        (loop $chunk
          (local.set $q0 (v128.load offset=48 (local.get $p)))
          (local.set $q1 (v128.load offset=64 (local.get $p)))
          (local.set $lo0 (call $q5kLevels (call $lo4 (local.get $q0)) (local.get $h0) (i32.const 4)))
          (local.set $lo1 (call $q5kLevels (call $lo4 (local.get $q1)) (local.get $h1) (i32.const 4)))
          (local.set $hi0 (call $q5kLevels (call $hi4 (local.get $q0)) (local.get $h0) (i32.const 3)))
          (local.set $hi1 (call $q5kLevels (call $hi4 (local.get $q1)) (local.get $h1) (i32.const 3)))
          (local.set $h0 (i16x8.shr_u (local.get $h0) (i32.const 2)))
          (local.set $h1 (i16x8.shr_u (local.get $h1) (i32.const 2)))
          (local.set $sc0 (call $lane16 (local.get $sc16) (i32.const 0)))
          (local.set $sc1 (call $lane16 (local.get $sc16) (i32.const 1)))
          (local.set $sc16 (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 0 1 2 3 (local.get $sc16) (local.get $sc16)))
          (local.set $isum0 (i32x4.add (local.get $isum0) (call $kChunk (local.get $lo0) (local.get $lo1)
            (local.get $hi0) (local.get $hi1) (local.get $sc0) (local.get $sc1) (local.get $a))))
          (v128.store (local.get $scratch) (local.get $isum0))
          (local.set $isum1 (i32x4.add (local.get $isum1) (call $kChunk (local.get $lo0) (local.get $lo1)
            (local.get $hi0) (local.get $hi1) (local.get $sc0) (local.get $sc1)
            (i32.add (local.get $a) (local.get $lvStride)))))
          (v128.store offset=16 (local.get $scratch) (local.get $isum1))
          (local.set $isum2 (i32x4.add (local.get $isum2) (call $kChunk (local.get $lo0) (local.get $lo1)
            (local.get $hi0) (local.get $hi1) (local.get $sc0) (local.get $sc1)
            (i32.add (local.get $a) (i32.shl (local.get $lvStride) (i32.const 1))))))
          (v128.store offset=32 (local.get $scratch) (local.get $isum2))
          (local.set $isum3 (i32x4.add (local.get $isum3) (call $kChunk (local.get $lo0) (local.get $lo1)
            (local.get $hi0) (local.get $hi1) (local.get $sc0) (local.get $sc1)
            (i32.add (local.get $a) (i32.mul (local.get $lvStride) (i32.const 3))))))
          (v128.store offset=48 (local.get $scratch) (local.get $isum3))
          (local.set $p (i32.add (local.get $p) (i32.const 32)))
          (local.set $a (i32.add (local.get $a) (i32.const 64)))
          (local.set $c (i32.add (local.get $c) (i32.const 1)))
          (br_if $chunk (i32.lt_u (local.get $c) (i32.const 4))))
        (local.set $p (i32.sub (local.get $p) (i32.const 128)))
        (local.set $isums (call $hsum4 (local.get $isum0) (local.get $isum1) (local.get $isum2) (local.get $isum3)))
        (local.set $msums
          (call $minSums4 (i16x8.extend_high_i8x16_u (local.get $scales)) (local.get $s) (local.get $sumsStride)))
        (local.set $dw (f64x2.splat (call $half (local.get $p))))
        (local.set $dmin (f64x2.splat (call $half (i32.add (local.get $p) (i32.const 2)))))
        (local.set $acc01 (f64x2.add (local.get $acc01) (call $kTerms
          (call $pairAt (local.get $d) (i32.add (local.get $d) (local.get $dsStride)))
          (local.get $dw) (local.get $dmin) (local.get $isums) (local.get $msums))))
        (local.set $acc23 (f64x2.add (local.get $acc23) (call $kTerms
          (call $pairAt (i32.add (local.get $d) (i32.shl (local.get $dsStride) (i32.const 1)))
                        (i32.add (local.get $d) (i32.mul (local.get $dsStride) (i32.const 3))))
          (local.get $dw) (local.get $dmin) (call $high64 (local.get $isums)) (call $high64 (local.get $msums)))))
        (local.set $p (i32.add (local.get $p) (i32.const 176)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (local.set $s (i32.add (local.get $s) (i32.const 48)))
        (br $block)))
      (v128.store (local.get $out) (call $f32x4Of (local.get $acc01) (local.get $acc23)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 16)))
      (br $row))))

  ;; Q6_K (210 bytes): ql[128] | qh[64] | int8 scales[16] | d (half). Half h of 128 values: value 128h + 32k + l is
  ;; the low (k < 2) or high nibble of ql[64h + 32(k mod 2) + l] with bits 2k, 2k + 1 of qh[32h + l] above it,
  ;; stored + 32; sub-block (value / 16) has scale[8h + 2k + l/16]. acc += d · d_a · Σ scale·Σ (q − 32)·a.
  (func (export "q6_k") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $acc f64)
    (local $s i32) (local $isum v128) (local $ql v128) (local $qm v128) (local $qh v128) (local $i i32) (local $sc i32)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 2))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc (f64.const 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (local.set $s (local.get $sums))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $isum (call $q6kOffset (i16x8.extend_low_i8x16_s (v128.load offset=192 (local.get $p)))
                                          (i16x8.extend_high_i8x16_s (v128.load offset=192 (local.get $p)))
                                          (local.get $s)))
        (local.set $i (i32.const 0))
        (loop $quarter
          (local.set $ql (v128.load (call $q6kQl (local.get $p) (local.get $i))))
          (local.set $qm (v128.load offset=32 (call $q6kQl (local.get $p) (local.get $i))))
          (local.set $qh (v128.load (call $q6kQh (local.get $p) (local.get $i))))
          (local.set $sc (call $q6kScale (local.get $p) (local.get $i)))
          (local.set $isum (i32x4.add (local.get $isum) (call $q6kQuarter
            (call $q6kLevels0 (local.get $ql) (local.get $qh)) (call $q6kLevels1 (local.get $qm) (local.get $qh))
            (call $q6kLevels2 (local.get $ql) (local.get $qh)) (call $q6kLevels3 (local.get $qm) (local.get $qh))
            (i16x8.splat (i32.load8_s (local.get $sc))) (i16x8.splat (i32.load8_s offset=2 (local.get $sc)))
            (i16x8.splat (i32.load8_s offset=4 (local.get $sc))) (i16x8.splat (i32.load8_s offset=6 (local.get $sc)))
            (local.get $a))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          ;; The next quarter's activations: 16 on within a half, then on to the next half's 128.
          (local.set $a (i32.add (local.get $a)
            (select (i32.const 16) (i32.const 112) (i32.and (local.get $i) (i32.const 1)))))
          (br_if $quarter (i32.lt_u (local.get $i) (i32.const 4))))
        (local.set $acc (f64.add (local.get $acc) (f64.mul
          (f64.mul (call $half (i32.add (local.get $p) (i32.const 208))) (f64.promote_f32 (f32.load (local.get $d))))
          (f64.convert_i32_s (call $hsum (local.get $isum))))))
        (local.set $p (i32.add (local.get $p) (i32.const 210)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (local.set $s (i32.add (local.get $s) (i32.const 48)))
        (br $block)))
      (f32.store (local.get $out) (f32.demote_f64 (local.get $acc)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $row))))

  ;; Q6_K against four tokens (see the header): each quarter's levels and scale broadcasts unpacked once for the four.
  (func (export "q6_k_x4") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32) (param $lvStride i32) (param $dsStride i32) (param $sumsStride i32)
        (param $scratch i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $s i32)
    (local $i i32) (local $sc i32)
    (local $acc01 v128) (local $acc23 v128) (local $scLo v128) (local $scHi v128) (local $isums v128) (local $dw v128)
    (local $isum0 v128) (local $isum1 v128) (local $isum2 v128) (local $isum3 v128)
    (local $ql v128) (local $qm v128) (local $qh v128)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128)
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $rows) (i32.const 4))))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
      (local.set $acc01 (v128.const f64x2 0 0))
      (local.set $acc23 (v128.const f64x2 0 0))
      (local.set $p (local.get $w))
      (local.set $blockEnd (i32.add (local.get $w) (local.get $rowBytes)))
      (local.set $a (local.get $lv))
      (local.set $d (local.get $ds))
      (local.set $s (local.get $sums))
      (block $rowDone (loop $block
        (br_if $rowDone (i32.ge_u (local.get $p) (local.get $blockEnd)))
        (local.set $scLo (i16x8.extend_low_i8x16_s (v128.load offset=192 (local.get $p))))
        (local.set $scHi (i16x8.extend_high_i8x16_s (v128.load offset=192 (local.get $p))))
        (local.set $isum0 (call $q6kOffset (local.get $scLo) (local.get $scHi) (local.get $s)))
        (local.set $isum1 (call $q6kOffset (local.get $scLo) (local.get $scHi)
          (i32.add (local.get $s) (local.get $sumsStride))))
        (local.set $isum2 (call $q6kOffset (local.get $scLo) (local.get $scHi)
          (i32.add (local.get $s) (i32.shl (local.get $sumsStride) (i32.const 1)))))
        (local.set $isum3 (call $q6kOffset (local.get $scLo) (local.get $scHi)
          (i32.add (local.get $s) (i32.mul (local.get $sumsStride) (i32.const 3)))))
        (local.set $i (i32.const 0))
        (loop $quarter
          (local.set $ql (v128.load (call $q6kQl (local.get $p) (local.get $i))))
          (local.set $qm (v128.load offset=32 (call $q6kQl (local.get $p) (local.get $i))))
          (local.set $qh (v128.load (call $q6kQh (local.get $p) (local.get $i))))
          (local.set $sc (call $q6kScale (local.get $p) (local.get $i)))
          (local.set $w0 (call $q6kLevels0 (local.get $ql) (local.get $qh)))
          (local.set $w1 (call $q6kLevels1 (local.get $qm) (local.get $qh)))
          (local.set $w2 (call $q6kLevels2 (local.get $ql) (local.get $qh)))
          (local.set $w3 (call $q6kLevels3 (local.get $qm) (local.get $qh)))
          (local.set $c0 (i16x8.splat (i32.load8_s (local.get $sc))))
          (local.set $c1 (i16x8.splat (i32.load8_s offset=2 (local.get $sc))))
          (local.set $c2 (i16x8.splat (i32.load8_s offset=4 (local.get $sc))))
          (local.set $c3 (i16x8.splat (i32.load8_s offset=6 (local.get $sc))))
          (local.set $isum0 (i32x4.add (local.get $isum0) (call $q6kQuarter (local.get $w0) (local.get $w1)
            (local.get $w2) (local.get $w3) (local.get $c0) (local.get $c1) (local.get $c2) (local.get $c3)
            (local.get $a))))
          (v128.store (local.get $scratch) (local.get $isum0))
          (local.set $isum1 (i32x4.add (local.get $isum1) (call $q6kQuarter (local.get $w0) (local.get $w1)
            (local.get $w2) (local.get $w3) (local.get $c0) (local.get $c1) (local.get $c2) (local.get $c3)
            (i32.add (local.get $a) (local.get $lvStride)))))
          (v128.store offset=16 (local.get $scratch) (local.get $isum1))
          (local.set $isum2 (i32x4.add (local.get $isum2) (call $q6kQuarter (local.get $w0) (local.get $w1)
            (local.get $w2) (local.get $w3) (local.get $c0) (local.get $c1) (local.get $c2) (local.get $c3)
            (i32.add (local.get $a) (i32.shl (local.get $lvStride) (i32.const 1))))))
          (v128.store offset=32 (local.get $scratch) (local.get $isum2))
          (local.set $isum3 (i32x4.add (local.get $isum3) (call $q6kQuarter (local.get $w0) (local.get $w1)
            (local.get $w2) (local.get $w3) (local.get $c0) (local.get $c1) (local.get $c2) (local.get $c3)
            (i32.add (local.get $a) (i32.mul (local.get $lvStride) (i32.const 3))))))
          (v128.store offset=48 (local.get $scratch) (local.get $isum3))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (local.set $a (i32.add (local.get $a)
            (select (i32.const 16) (i32.const 112) (i32.and (local.get $i) (i32.const 1)))))
          (br_if $quarter (i32.lt_u (local.get $i) (i32.const 4))))
        (local.set $isums (call $hsum4 (local.get $isum0) (local.get $isum1) (local.get $isum2) (local.get $isum3)))
        (local.set $dw (f64x2.splat (call $half (i32.add (local.get $p) (i32.const 208)))))
        (local.set $acc01 (f64x2.add (local.get $acc01) (call $dTerms (local.get $dw)
          (call $pairAt (local.get $d) (i32.add (local.get $d) (local.get $dsStride))) (local.get $isums))))
        (local.set $acc23 (f64x2.add (local.get $acc23) (call $dTerms (local.get $dw)
          (call $pairAt (i32.add (local.get $d) (i32.shl (local.get $dsStride) (i32.const 1)))
                        (i32.add (local.get $d) (i32.mul (local.get $dsStride) (i32.const 3))))
          (call $high64 (local.get $isums)))))
        (local.set $p (i32.add (local.get $p) (i32.const 210)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (local.set $s (i32.add (local.get $s) (i32.const 48)))
        (br $block)))
      (v128.store (local.get $out) (call $f32x4Of (local.get $acc01) (local.get $acc23)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 16)))
      (br $row))))
)
