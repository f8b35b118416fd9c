// The checkout and build folders of the test binaries, for every test source (included
// with -include by tests/CMakeLists.txt). The paths are compiled into one file
// (test_paths.cpp) rather than into every test's flags, so that the test objects of two
// checkouts are the same and a compiler cache reuses them.
#pragma once

namespace wse::testing {
const char* source_dir();  // the checkout
const char* binary_dir();  // the build folder
}  // namespace wse::testing

#define WSE_SOURCE_DIR (::wse::testing::source_dir())
#define WSE_BINARY_DIR (::wse::testing::binary_dir())
