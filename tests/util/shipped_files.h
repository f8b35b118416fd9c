// The shipped configuration files a parameterised test runs over, and a test name for
// each, so that a file added to the folder is covered without changing the test.
#pragma once

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace wse::testing {

// The .yaml files of `folder` (relative to the source tree, e.g. "configs/experiments"),
// by name, sorted.
inline std::vector<std::string> shipped_yaml_files(const std::string& folder) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(WSE_SOURCE_DIR) / folder)) {
    if (e.path().extension() == ".yaml") names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A GoogleTest parameter name from a file name: its stem, other characters than letters
// and digits as '_'.
inline std::string file_param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = std::filesystem::path(info.param).stem().string();
  for (char& ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
}

}  // namespace wse::testing
