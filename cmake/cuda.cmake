# The CUDA backend (SPECATTN_CUDA=ON): language, toolkit, architectures, NCCL and the specattn_cuda module built from
# src/backend/cuda/*.{cu,cpp} (kernels are headers under src/kernels/, included by the launchers' .cu files).
include(${CMAKE_CURRENT_LIST_DIR}/cuda_arch.cmake)
if(NOT DEFINED CMAKE_CUDA_HOST_COMPILER)
    set(CMAKE_CUDA_HOST_COMPILER ${CMAKE_CXX_COMPILER})
endif()
enable_language(CUDA)
# NOTE(cuda): C++17 for .cu files: CMake 3.25 does not know nvcc's C++20 flag. Kernels and launchers need
# nothing newer; host .cpp files of the module are C++20 like the rest of the project.
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_EXTENSIONS OFF)
find_package(CUDAToolkit REQUIRED)

file(GLOB specattn_cuda_srcs CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/src/backend/cuda/*.cu"
     "${CMAKE_SOURCE_DIR}/src/backend/cuda/*.cpp")
add_library(specattn_cuda STATIC ${specattn_cuda_srcs})
target_include_directories(specattn_cuda PUBLIC "${CMAKE_SOURCE_DIR}/src" "${CMAKE_SOURCE_DIR}/include")
# NCCL (tensor parallelism, src/backend/cuda/cuda_collectives.cpp) ships with the CUDA toolkit here; a GPU-less
# machine links it too. At run time libnccl.so.2 must be on the loader's path (scripts/device_prebuilt.sh).
find_path(SPECATTN_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} REQUIRED)
find_library(SPECATTN_NCCL_LIBRARY NAMES nccl HINTS ${CUDAToolkit_LIBRARY_DIR} REQUIRED)
target_include_directories(specattn_cuda PRIVATE ${SPECATTN_NCCL_INCLUDE_DIR})
target_link_libraries(specattn_cuda PUBLIC specattn_kv specattn_model specattn_tp CUDA::cudart CUDA::cublasLt
                                           ${SPECATTN_NCCL_LIBRARY})
target_compile_definitions(specattn_cuda PUBLIC SPECATTN_HAS_CUDA=1)
# The wgmma kernels (src/kernels/attention_wg.cuh) exist only in the sm_90a machine code of the explicit list
# (cmake/cuda_arch.cmake); a native build compiles them as traps and the launcher never picks them.
if(NOT SPECATTN_NATIVE)
    target_compile_definitions(specattn_cuda PRIVATE SPECATTN_CUDA_SM90A=1)
endif()

# Host files get the project's warnings; device files the same warnings through the host compiler, plus nvcc's own.
# No --use_fast_math: RoPE's sincosf and the softmax's exp2f must stay accurate.
specattn_warnings(specattn_cuda)
get_target_property(specattn_cuda_opts specattn_cuda COMPILE_OPTIONS)
set_target_properties(specattn_cuda PROPERTIES COMPILE_OPTIONS "")
foreach(opt ${specattn_cuda_opts})
    target_compile_options(specattn_cuda PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${opt}>)
endforeach()
target_compile_options(specattn_cuda PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:${SPECATTN_CUDA_GENCODE} -Xcompiler=-Wall,-Wextra --expt-relaxed-constexpr
                               -Xptxas=-warn-spills>)
if(SPECATTN_WERROR)
    target_compile_options(specattn_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
endif()
