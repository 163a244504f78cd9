/* A C program built by CMake against an installed SwiftRCU (find_package(swiftrcu)). */
#include <stdio.h>
#include <stdlib.h>
#include <swiftrcu.h>

static int destroyed;
static void destroy(void *object, void *context) {
    (void)context;
    free(object);
    destroyed++;
}

int main(void) {
    int *first = malloc(sizeof *first);
    int *second = malloc(sizeof *second);
    if (first == NULL || second == NULL)
        return 1;
    *first = 1;
    *second = 2;
    swiftrcu_ptr *p = swiftrcu_new(first, destroy, NULL);
    swiftrcu_guard g = swiftrcu_read_lock();
    int seen = *(const int *)swiftrcu_dereference(p, &g);
    swiftrcu_read_unlock(&g);
    swiftrcu_old *old = NULL;
    if (swiftrcu_replace(p, second, &old) != SWIFTRCU_OK || swiftrcu_old_free(old) != SWIFTRCU_OK)
        return 1;
    if (swiftrcu_region_enter() != SWIFTRCU_OK || swiftrcu_region_exit() != SWIFTRCU_OK)
        return 1;
    swiftrcu_free(p);
    printf("consumer_c: read %d, destroyed %d, library %s\n", seen, destroyed, swiftrcu_version());
    return seen == 1 && destroyed == 2 ? 0 : 1;
}
