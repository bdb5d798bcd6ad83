# Which GPUs the CUDA code is built for. Included before enable_language(CUDA).
#
# SPECATTN_NATIVE=ON: the GPU(s) of the building machine (CMAKE_CUDA_ARCHITECTURES=native; needs a GPU there).
# Otherwise this explicit list, as -gencode flags rather than CMAKE_CUDA_ARCHITECTURES:
#   compute_90a -> sm_90a   Hopper (H100, H200) machine code. The "a" target unlocks wgmma / setmaxnreg for later
#                           kernels. Written as -gencode because nvcc 13.0's -arch=sm_90a shorthand also runs a plain
#                           sm_90 pass that rejects those instructions (see the device notes, HOPPER.md).
#   compute_80 (PTX)        the fallback: any GPU from Ampere on JIT-compiles it at load time (slower start,
#                           no Hopper-only instructions). Our kernels need nothing newer than sm_80 today.
# Add a line per architecture you need; each costs one more device compile of every .cu file.
if(SPECATTN_NATIVE)
    set(CMAKE_CUDA_ARCHITECTURES native)
else()
    set(CMAKE_CUDA_ARCHITECTURES OFF) # the flags below say it all
    set(SPECATTN_CUDA_GENCODE
        "-gencode=arch=compute_90a,code=sm_90a"
        "-gencode=arch=compute_80,code=compute_80"
    )
endif()
