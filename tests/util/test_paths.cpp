#include "util/test_paths.h"

#include <unistd.h>

namespace wse::testing {
const char* source_dir() { return WSE_TEST_SOURCE_DIR; }
const char* binary_dir() { return WSE_TEST_BINARY_DIR; }
std::filesystem::path temp_path(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("wse_tests_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir / name;
}
}  // namespace wse::testing
