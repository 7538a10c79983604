// Counts operator new calls on this thread (this test binary replaces the global
// operator new/delete in alloc_counter.cpp, a separate file so the compiler does
// not see malloc/free pairs across the replacement).
#pragma once

#include <cstddef>

namespace divert::test {

class AllocCounter {
 public:
  AllocCounter();   // starts counting at 0 on this thread
  ~AllocCounter();  // stops
  AllocCounter(const AllocCounter&) = delete;
  AllocCounter& operator=(const AllocCounter&) = delete;
  std::size_t count() const;
};

}  // namespace divert::test
