# Third-party packages, all from Debian (see scripts/install_deps.sh).
find_package(PkgConfig REQUIRED)
# Debian's libsystemc-dev 2.3.4 ships only pkg-config files, no CMake package.
pkg_check_modules(SYSTEMC REQUIRED IMPORTED_TARGET systemc)
# The library was built as C++17 and exports sc_api_version_2_3_4_cxx201703L;
# code compiled as C++20 links only if it asks for that same API version.
set_property(TARGET PkgConfig::SYSTEMC APPEND PROPERTY
  INTERFACE_COMPILE_DEFINITIONS SC_CPLUSPLUS=201703L)
# SystemC headers are not warning-clean under -Wall -Wextra: include them as system headers.
get_target_property(_sc_inc PkgConfig::SYSTEMC INTERFACE_INCLUDE_DIRECTORIES)
if(_sc_inc)
  set_property(TARGET PkgConfig::SYSTEMC PROPERTY INTERFACE_SYSTEM_INCLUDE_DIRECTORIES ${_sc_inc})
endif()
find_package(Threads REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(nlohmann_json 3 REQUIRED)
find_package(fmt REQUIRED)
if(WSE_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
if(WSE_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
