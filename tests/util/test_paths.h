// The checkout and build folders of the test binaries, for every test source (included
// with -include by tests/CMakeLists.txt). The paths are compiled into one file
// (test_paths.cpp) rather than into every test's flags, so that the test objects of two
// checkouts are the same and a compiler cache reuses them.
#pragma once

#include <filesystem>
#include <string>

namespace wse::testing {
const char* source_dir();  // the checkout
const char* binary_dir();  // the build folder
// `name` in a temporary folder of this process's own (made if missing), so that the
// suites of two checkouts running at once do not write into each other's files.
std::filesystem::path temp_path(const std::string& name);
}  // namespace wse::testing

#define WSE_SOURCE_DIR (::wse::testing::source_dir())
#define WSE_BINARY_DIR (::wse::testing::binary_dir())
