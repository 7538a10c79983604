#include "support/live.hpp"
