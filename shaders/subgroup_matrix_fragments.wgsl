// subgroup_matrix_fragments: the fragment types of the subgroup-matrix kernels
// (subgroup_matrix_matmul.wgsl, attention_prefill_subgroup_matrix.wgsl), appended to each by its
// TypeScript wrapper: F x F f16 operands (Left, Right) and an f32 Result, F = 16 with FRAG16 (where
// the adapter lists 16 x 16), else 8. The including shader enables the extension.
#if FRAG16
const F: u32 = 16u;
alias Left = subgroup_matrix_left<f16, 16, 16>;
alias Right = subgroup_matrix_right<f16, 16, 16>;
alias Result = subgroup_matrix_result<f32, 16, 16>;
#else
const F: u32 = 8u;
alias Left = subgroup_matrix_left<f16, 8, 8>;
alias Right = subgroup_matrix_right<f16, 8, 8>;
alias Result = subgroup_matrix_result<f32, 8, 8>;
#endif
