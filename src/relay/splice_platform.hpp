// Whether this build has the splice path: Linux, unless DIVERT_RELAY_NO_SPLICE
// is defined (it builds the portable configuration on Linux, to check that it
// compiles and passes the copy-path tests).
#pragma once

#if defined(__linux__) && !defined(DIVERT_RELAY_NO_SPLICE)
#define DIVERT_RELAY_SPLICE 1
#else
#define DIVERT_RELAY_SPLICE 0
#endif
