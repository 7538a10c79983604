// The README's code is the examples' code: every examples/readme_*.cpp must
// appear verbatim in README.md (they are compiled by the build and run by ctest:
// examples/CMakeLists.txt).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/catch.hpp"

namespace fs = std::filesystem;

static std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST_CASE("README shows every examples/readme_*.cpp verbatim") {
  fs::path root = fs::path(DIVERT_TEST_SOURCE_DIR).parent_path();
  auto readme = slurp(root / "README.md");
  REQUIRE_FALSE(readme.empty());
  int n = 0;
  for (auto& e : fs::directory_iterator(root / "examples")) {
    auto name = e.path().filename().string();
    if (name.rfind("readme_", 0) != 0 || e.path().extension() != ".cpp") continue;
    ++n;
    INFO(name);
    CHECK(readme.find("```cpp\n" + slurp(e.path()) + "```") != std::string::npos);
  }
  CHECK(n >= 2);
  // The two commands open the README.
  CHECK(readme.find("examples/demo.sh") < readme.find("## "));
  CHECK(readme.find("tests/run.sh") < readme.find("## "));
}

TEST_CASE("README links to docs/ pages that exist") {
  fs::path root = fs::path(DIVERT_TEST_SOURCE_DIR).parent_path();
  auto readme = slurp(root / "README.md");
  int n = 0;
  for (auto at = readme.find("](docs/"); at != std::string::npos;
       at = readme.find("](docs/", at + 1)) {
    auto end = readme.find(')', at);
    REQUIRE(end != std::string::npos);
    auto target = readme.substr(at + 2, end - at - 2);
    INFO(target);
    CHECK(fs::is_regular_file(root / target));
    ++n;
  }
  // The engineering notes moved out of the README: performance, codec, HTTP.
  CHECK(n >= 3);
}
