# Flags applied to project targets only (never to third-party code).
add_library(wse_project_options INTERFACE)
add_library(wse::project_options ALIAS wse_project_options)
target_compile_options(wse_project_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough)
if(WSE_WERROR)
  target_compile_options(wse_project_options INTERFACE -Werror)
endif()
if(WSE_ENABLE_ASAN)
  # SystemC switches thread stacks; use-after-scope checks then see stale poisoning on
  # the main stack (a false positive), so they are off.
  target_compile_options(wse_project_options INTERFACE -fsanitize=address -fno-omit-frame-pointer
    -fno-sanitize-address-use-after-scope)
  target_link_options(wse_project_options INTERFACE -fsanitize=address)
endif()
if(WSE_ENABLE_UBSAN)
  target_compile_options(wse_project_options INTERFACE -fsanitize=undefined -fno-sanitize-recover=undefined)
  target_link_options(wse_project_options INTERFACE -fsanitize=undefined)
endif()
if(WSE_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "WSE_BUILD_FUZZERS needs clang's libFuzzer: configure with "
                        "-DCMAKE_CXX_COMPILER=clang++ (scripts/test_sanitizers.sh does)")
  endif()
  # Coverage feedback for libFuzzer in all project code, so the same build serves the
  # tests and the fuzz targets (fuzz/ links its programs with -fsanitize=fuzzer; the
  # sanitizer runtimes supply the callbacks to every other program).
  target_compile_options(wse_project_options INTERFACE -fsanitize=fuzzer-no-link)
  target_link_options(wse_project_options INTERFACE -fsanitize=fuzzer-no-link)
endif()
# Headers are included by path from the project root: #include "systemc_models/units/units.h".
target_include_directories(wse_project_options INTERFACE ${PROJECT_SOURCE_DIR})

# wse_add_component(NAME SOURCES... DEPS...): one static library per component folder,
# exported as wse::NAME.
function(wse_add_component name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  add_library(wse::${name} ALIAS ${name})
  target_link_libraries(${name} PUBLIC wse::project_options ${ARG_DEPS})
endfunction()
