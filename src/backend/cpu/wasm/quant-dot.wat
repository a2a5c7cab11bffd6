;; Quantized weight rows times one activation row quantized to 8 bits, with 128-bit SIMD: the same integer sums as
;; quant-dot.ts's JavaScript loops (exact, so their order does not matter), then the same float64 scale steps in the
;; same order, so each row's result is bit-identical to theirs.
;;
;; Every export has the signature (w, rowBytes, rows, lv, ds, sums, out): `rows` rows of blocks from byte w, rowBytes
;; apart; the activation row's int8 levels at lv, its per-block scale d (f32) at ds (for q8_1, Q4_1's and Q5_1's,
;; d then s, the block's level sum times d) and, for the k-quants, each block's 16 sums of 16 levels then 8 sums of 32
;; (i16, 48 bytes) at sums; one f32 result per row from out. The memory starts with the f32 value of every half
;; (65536 × 4 bytes from address 0), so a block's half scale is one load.
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
            (f64.convert_i32_s (call $hsum (i32x4.add
              (i32x4.extadd_pairwise_i16x8_s
                (call $mul16 (v128.load offset=2 (local.get $p)) (v128.load (local.get $a))))
              (i32x4.extadd_pairwise_i16x8_s
                (call $mul16 (v128.load offset=18 (local.get $p)) (v128.load offset=16 (local.get $a))))))))))
        (local.set $p (i32.add (local.get $p) (i32.const 34)))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (br $block)))
      (f32.store (local.get $out) (f32.demote_f64 (local.get $acc)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $row))))

  ;; Q4_0: d (half) | 16 bytes, value j the low nibble of byte j, value j + 16 its high nibble, levels stored + 8. The
  ;; levels go in unsigned (for relaxed SIMD's dot) and the offset comes off as 8 · the activations' sum, as in Q5_0.
  (func (export "q4_0") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $acc f64)
    (local $q v128) (local $a0 v128) (local $a1 v128)
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
        (local.set $a0 (v128.load (local.get $a)))
        (local.set $a1 (v128.load offset=16 (local.get $a)))
        (local.set $acc (f64.add (local.get $acc)
          (f64.mul
            (f64.mul (call $half (local.get $p)) (f64.promote_f32 (f32.load (local.get $d))))
            (f64.convert_i32_s (call $hsum (i32x4.extadd_pairwise_i16x8_s (i16x8.sub
              (i16x8.add
                (call $mulu7 (v128.and (local.get $q) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
                             (local.get $a0))
                (call $mulu7 (call $hi4 (local.get $q)) (local.get $a1)))
              (i16x8.add
                (call $mulu7 (v128.const i8x16 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8) (local.get $a0))
                (call $mulu7 (v128.const i8x16 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8 8) (local.get $a1))))))))))
        (local.set $p (i32.add (local.get $p) (i32.const 18)))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (br $block)))
      (f32.store (local.get $out) (f32.demote_f64 (local.get $acc)))
      (local.set $w (local.get $blockEnd))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
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
    (local $q v128) (local $qh i32) (local $a0 v128) (local $a1 v128)
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
        (local.set $a0 (v128.load (local.get $a)))
        (local.set $a1 (v128.load offset=16 (local.get $a)))
        (local.set $acc (f64.add (local.get $acc)
          (f64.mul
            (f64.mul (call $half (local.get $p)) (f64.promote_f32 (f32.load (local.get $d))))
            (f64.convert_i32_s (call $hsum (i32x4.extadd_pairwise_i16x8_s (i16x8.sub
              (i16x8.add
                (call $mulu7 (v128.or (v128.and (local.get $q) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
                                      (call $bit5 (local.get $qh)))
                             (local.get $a0))
                (call $mulu7 (v128.or (call $hi4 (local.get $q)) (call $bit5 (i32.shr_u (local.get $qh) (i32.const 16))))
                             (local.get $a1)))
              (i16x8.add
                (call $mulu7 (v128.const i8x16 16 16 16 16 16 16 16 16 16 16 16 16 16 16 16 16) (local.get $a0))
                (call $mulu7 (v128.const i8x16 16 16 16 16 16 16 16 16 16 16 16 16 16 16 16 16) (local.get $a1))))))))))
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
    (local $scales v128) (local $sc16 v128) (local $isum v128) (local $q v128) (local $c i32) (local $j i32)
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
          (local.set $q (v128.load offset=16 (local.get $p)))
          (local.set $j (i32.shl (local.get $c) (i32.const 1)))
          ;; Low nibbles with the chunk's first 32 levels under scale 2c, high nibbles with the next 32 under 2c + 1
          ;; (each scale broadcast to every i16 lane from the scales widened to i16).
          (local.set $isum (i32x4.add (local.get $isum) (i32x4.dot_i16x8_s
            (i16x8.add
              (call $mulu7 (v128.and (local.get $q) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
                           (v128.load (local.get $a)))
              (call $mulu7 (v128.and (v128.load offset=32 (local.get $p))
                                     (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
                           (v128.load offset=16 (local.get $a))))
            (call $lane16 (local.get $sc16) (local.get $j)))))
          (local.set $isum (i32x4.add (local.get $isum) (i32x4.dot_i16x8_s
            (i16x8.add
              (call $mulu7 (call $hi4 (local.get $q)) (v128.load offset=32 (local.get $a)))
              (call $mulu7 (call $hi4 (v128.load offset=32 (local.get $p)))
                           (v128.load offset=48 (local.get $a))))
            (call $lane16 (local.get $sc16) (i32.add (local.get $j) (i32.const 1))))))
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
          (local.set $isum (i32x4.add (local.get $isum) (i32x4.dot_i16x8_s
            (i16x8.add
              (call $mulu7
                (v128.or (v128.and (local.get $q0) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
                         (i8x16.shl (v128.and (local.get $h0) (v128.const i8x16 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1)) (i32.const 4)))
                (v128.load (local.get $a)))
              (call $mulu7
                (v128.or (v128.and (local.get $q1) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
                         (i8x16.shl (v128.and (local.get $h1) (v128.const i8x16 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1)) (i32.const 4)))
                (v128.load offset=16 (local.get $a))))
            (call $lane16 (local.get $sc16) (local.get $j)))))
          (local.set $isum (i32x4.add (local.get $isum) (i32x4.dot_i16x8_s
            (i16x8.add
              (call $mulu7
                (v128.or (call $hi4 (local.get $q0))
                         (i8x16.shl (v128.and (local.get $h0) (v128.const i8x16 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2)) (i32.const 3)))
                (v128.load offset=32 (local.get $a)))
              (call $mulu7
                (v128.or (call $hi4 (local.get $q1))
                         (i8x16.shl (v128.and (local.get $h1) (v128.const i8x16 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2)) (i32.const 3)))
                (v128.load offset=48 (local.get $a))))
            (call $lane16 (local.get $sc16) (i32.add (local.get $j) (i32.const 1))))))
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

  ;; Q6_K (210 bytes): ql[128] | qh[64] | int8 scales[16] | d (half). Half h of 128 values: value 128h + 32k + l is
  ;; the low (k < 2) or high nibble of ql[64h + 32(k mod 2) + l] with bits 2k, 2k + 1 of qh[32h + l] above it,
  ;; stored + 32; sub-block (value / 16) has scale[8h + 2k + l/16]. acc += d · d_a · Σ scale·Σ (q − 32)·a.
  (func (export "q6_k") (param $w i32) (param $rowBytes i32) (param $rows i32) (param $lv i32) (param $ds i32)
        (param $sums i32) (param $out i32)
    (local $end i32) (local $p i32) (local $blockEnd i32) (local $a i32) (local $d i32) (local $acc f64)
    (local $s i32) (local $isum v128) (local $ql v128) (local $qm v128) (local $qh v128) (local $i i32) (local $x i32) (local $sc i32)
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
        ;; The levels go in without their offset 32: it comes off here as 32 · Σ scale · (sub-block's sum of levels).
        (local.set $isum (i32x4.sub (v128.const i32x4 0 0 0 0) (i32x4.shl (i32x4.add
          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (v128.load offset=192 (local.get $p))) (v128.load (local.get $s)))
          (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (v128.load offset=192 (local.get $p)))
                             (v128.load offset=16 (local.get $s)))) (i32.const 5))))
        ;; i = 0..3: half h = i/2, l from 16·(i mod 2). $x: offset of the 16 ql bytes; $sc: the first scale's.
        (local.set $i (i32.const 0))
        (loop $quarter
          (local.set $x (i32.add (local.get $p)
            (i32.add (i32.shl (i32.shr_u (local.get $i) (i32.const 1)) (i32.const 6))
                     (i32.shl (i32.and (local.get $i) (i32.const 1)) (i32.const 4)))))
          (local.set $sc (i32.add (local.get $p)
            (i32.add (i32.const 192) (i32.add (i32.shl (i32.shr_u (local.get $i) (i32.const 1)) (i32.const 3))
                                              (i32.and (local.get $i) (i32.const 1))))))
          (local.set $ql (v128.load (local.get $x)))
          (local.set $qm (v128.load offset=32 (local.get $x)))
          ;; qh at 128 + 32h + 16·(i mod 2).
          (local.set $qh (v128.load offset=128 (i32.add (local.get $p)
            (i32.add (i32.shl (i32.shr_u (local.get $i) (i32.const 1)) (i32.const 5))
                     (i32.shl (i32.and (local.get $i) (i32.const 1)) (i32.const 4))))))
          (local.set $isum (i32x4.add (local.get $isum) (i32x4.add
            (i32x4.dot_i16x8_s
              (call $mulu7
                (v128.or (v128.and (local.get $ql) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
                                    (i8x16.shl (v128.and (local.get $qh) (v128.const i8x16 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3)) (i32.const 4)))
                (v128.load (local.get $a)))
              (i16x8.splat (i32.load8_s (local.get $sc))))
            (i32x4.dot_i16x8_s
              (call $mulu7
                (v128.or (v128.and (local.get $qm) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
                                    (i8x16.shl (v128.and (local.get $qh) (v128.const i8x16 12 12 12 12 12 12 12 12 12 12 12 12 12 12 12 12)) (i32.const 2)))
                (v128.load offset=32 (local.get $a)))
              (i16x8.splat (i32.load8_s offset=2 (local.get $sc)))))))
          (local.set $isum (i32x4.add (local.get $isum) (i32x4.add
            (i32x4.dot_i16x8_s
              (call $mulu7
                (v128.or (call $hi4 (local.get $ql))
                                    (v128.and (local.get $qh) (v128.const i8x16 48 48 48 48 48 48 48 48 48 48 48 48 48 48 48 48)))
                (v128.load offset=64 (local.get $a)))
              (i16x8.splat (i32.load8_s offset=4 (local.get $sc))))
            (i32x4.dot_i16x8_s
              (call $mulu7
                (v128.or (call $hi4 (local.get $qm))
                                    (v128.and (i16x8.shr_u (local.get $qh) (i32.const 2))
                                              (v128.const i8x16 48 48 48 48 48 48 48 48 48 48 48 48 48 48 48 48)))
                (v128.load offset=96 (local.get $a)))
              (i16x8.splat (i32.load8_s offset=6 (local.get $sc)))))))
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
)
