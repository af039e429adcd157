"""The variables that pin PyTorch, oneDNN and MKL to their AVX2 code paths (why: :mod:`protolab.runner.kernel_paths`).

They are read when the libraries load, so they act on a process started with them: the runner gives them to its
notebook kernels, and glyph-zsl's build starts its own pinned process (:mod:`protolab.data.glyph_zsl`). Kept here,
free of torch, so that the runner's command line stays light and science modules need not import the runner.
"""

AVX2_PATHS = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's vectorised CPU kernels
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's JIT kernels (convolutions, linear layers)
    "MKL_CBWR": "AVX2",  # MKL's code branch (BLAS products), its conditional numerical reproducibility mode
}
