#if defined(DIVERT_CATCH_V3)
// v3 provides main through Catch2::Catch2WithMain; keep one here for symmetry.
#include <catch2/catch_session.hpp>
int main(int argc, char* argv[]) {
  return Catch::Session().run(argc, argv);
}
#else
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#endif
