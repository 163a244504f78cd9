/*
 * SwiftRCU core (room 2 of 3), its C part: nothing to run; compiles the layout checks of
 * include/rcucore.h once on its own.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "rcucore.h"
