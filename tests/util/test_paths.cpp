#include "util/test_paths.h"

namespace wse::testing {
const char* source_dir() { return WSE_TEST_SOURCE_DIR; }
const char* binary_dir() { return WSE_TEST_BINARY_DIR; }
}  // namespace wse::testing
