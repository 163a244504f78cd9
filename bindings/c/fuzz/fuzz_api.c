/*
 * libFuzzer harness for the C API: the input is a program of API calls on a few handle variables.
 * A model knows what every handle is (live, stale, NULL, of the other kind, never a handle),
 * which guards the thread holds, and what every object is (published, old, retired, destroyed);
 * each call's answer is checked against the contract in swiftrcu.h and the harness aborts on a
 * mismatch. Covered: NULL / stale / double-freed / wrong-kind / made-up handles, unlock out of
 * order and of spent, zeroed or foreign guards, grace-period waits inside read sections (also
 * inside copy_update callbacks), copy_update callbacks that run a nested program (re-entering
 * their own and other pointers), deep nesting up to the 255 limit, and deferred destroys checked
 * against the read sections they must wait for.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <swiftrcu.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPTR 4
#define NOLD 6
#define NSTALE 8
#define NLOADER 4
#define NOBJ 96
#define MAX_OPS 160
#define MAX_GUARDS 300
#define MAX_CALLBACK_DEPTH 3
#define LIBRARY_MAX_NESTING 255

#define OBJ_MAGIC 0x0B1EC7u
#define OBJ_POISON 0xDEADu

/* ---- failure ---- */

static const char *current_op = "";

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "CONTRACT MISMATCH in %s: ", current_op);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

#define EXPECT_RC(got, want)                                                     \
    do {                                                                         \
        int g_ = (got), w_ = (want);                                             \
        if (g_ != w_)                                                            \
            fail("%s returned %d, expected %d (line %d)", #got, g_, w_, __LINE__); \
    } while (0)

/* ---- objects ---- */

enum { O_UNUSED, O_PUBLISHED, O_OLD, O_RETIRING, O_DESTROYED };

struct obj {
    uint32_t magic;
    int id;
    atomic_int state;
    atomic_int destroyed;
    int has_destroy;      /* published in a pointer with a destroy function */
    void *context;        /* that pointer's context */
    atomic_int section;   /* outermost read section open when it was deferred (0: none) */
};

static struct obj objs[NOBJ];
static int nobjs;
static int contexts[NPTR]; /* each pointer variable's context is &contexts[i] */

/* The id of the outermost read section the harness thread holds now, 0 when none. Cleared before
 * the last unlock, so a destroy that sees it still set ran inside the section. */
static atomic_int open_section;
static int section_counter;

static struct obj *new_obj(void) {
    if (nobjs >= NOBJ)
        return NULL;
    struct obj *o = &objs[nobjs];
    o->magic = OBJ_MAGIC;
    o->id = nobjs++;
    atomic_store(&o->state, O_UNUSED);
    atomic_store(&o->destroyed, 0);
    atomic_store(&o->section, 0);
    return o;
}

static void destroy_fn(void *p, void *context) {
    struct obj *o = p;
    if (o < objs || o >= objs + NOBJ)
        fail("destroy got a pointer that is no object (%p)", p);
    if (o->magic != OBJ_MAGIC)
        fail("destroy of object %d whose magic is %#x", o->id, o->magic);
    if (context != o->context)
        fail("destroy of object %d got the wrong context", o->id);
    int st = atomic_load(&o->state);
    if (st != O_RETIRING)
        fail("destroy of object %d in state %d (not retired: still reachable)", o->id, st);
    int sec = atomic_load(&o->section);
    if (sec != 0 && atomic_load(&open_section) == sec)
        fail("deferred destroy of object %d ran inside read section %d that was open when it was deferred",
             o->id, sec);
    if (atomic_fetch_add(&o->destroyed, 1) != 0)
        fail("object %d destroyed twice", o->id);
    atomic_store(&o->state, O_DESTROYED);
}

/* ---- handles ---- */

struct ptr_var {
    swiftrcu_ptr *h; /* NULL when the variable holds nothing */
    int has_destroy;
    struct obj *cur; /* the published object (NULL: publishes NULL) */
};

struct old_var {
    swiftrcu_old *h;
    struct obj *obj;
};

static struct ptr_var ptrs[NPTR];
static struct old_var olds[NOLD];
static uintptr_t stale[NSTALE]; /* retired handles of either kind */
static int nstale;

static void add_stale(uintptr_t h) { stale[nstale++ % NSTALE] = h; }

static int is_live_handle(uintptr_t v) {
    for (int i = 0; i < NPTR; i++)
        if (ptrs[i].h && (uintptr_t)ptrs[i].h == v)
            return 1;
    for (int i = 0; i < NOLD; i++)
        if (olds[i].h && (uintptr_t)olds[i].h == v)
            return 1;
    return 0;
}

/* ---- input ---- */

static const uint8_t *in_data;
static size_t in_size, in_pos;

static uint8_t byte(void) { return in_pos < in_size ? in_data[in_pos++] : 0; }
static int more(void) { return in_pos < in_size; }

static uint64_t word64(void) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | byte();
    return v;
}

/* What a chosen handle argument is. */
enum { T_LIVE, T_EMPTY, T_STALE, T_NULL, T_OTHER_KIND, T_MADE_UP };

struct target {
    int kind;
    int var;      /* for T_LIVE / T_EMPTY */
    uintptr_t h;  /* the value passed */
};

static uintptr_t ptr_handle(int i) { return (uintptr_t)ptrs[i % NPTR].h; }
static uintptr_t old_handle(int i) { return (uintptr_t)olds[i % NOLD].h; }

/* Chooses a handle argument: mostly variables of the wanted kind (`own`, `nown` of them),
 * sometimes NULL, stale handles, handles of the other kind or made-up values. */
static struct target pick(uintptr_t (*own)(int), int nown, uintptr_t (*other)(int)) {
    uint8_t b = byte();
    struct target t = {.var = -1};
    switch (b >> 5) {
    case 0: case 1: case 2: case 3:
        t.var = b % nown;
        t.h = own(t.var);
        t.kind = t.h ? T_LIVE : T_NULL;
        break;
    case 4:
        t.kind = nstale ? T_STALE : T_NULL;
        t.h = nstale ? stale[b % (nstale < NSTALE ? nstale : NSTALE)] : 0;
        break;
    case 5:
        t.h = other(b);
        t.kind = t.h ? T_OTHER_KIND : T_NULL;
        break;
    case 6:
        t.h = (uintptr_t)word64();
        t.kind = t.h == 0 ? T_NULL : T_MADE_UP;
        if (is_live_handle(t.h))
            t.kind = T_NULL, t.h = 0; /* equal to a live handle: the contract allows anything */
        break;
    default:
        t.kind = T_NULL;
        t.h = 0;
        break;
    }
    return t;
}

static struct target pick_ptr(void) { return pick(ptr_handle, NPTR, old_handle); }
static struct target pick_old(void) { return pick(old_handle, NOLD, ptr_handle); }

/* ---- guards ---- */

static swiftrcu_guard guards[MAX_GUARDS]; /* held guards, outermost first */
static int nguards;
static swiftrcu_guard spent[8]; /* copies of guards already unlocked */
static int nspent;
static swiftrcu_guard foreign; /* a guard taken (and released) by another thread */

/* Callback nesting: the pointers whose copy_update callbacks run on this thread, outermost first. */
static int cb_stack[MAX_CALLBACK_DEPTH + 1];
static int cb_depth;

static int in_section(void) { return nguards > 0 || cb_depth > 0; }

static int in_own_callback(int var) {
    for (int i = 0; i < cb_depth; i++)
        if (cb_stack[i] == var)
            return 1;
    return 0;
}

static void push_guard(swiftrcu_guard g) {
    swiftrcu_guard zero;
    memset(&zero, 0, sizeof zero);
    if (memcmp(&g, &zero, sizeof g) == 0)
        fail("read_lock returned a zeroed guard at depth %d", nguards);
    if (nguards == 0)
        atomic_store(&open_section, ++section_counter);
    guards[nguards++] = g;
}

static void unlock_innermost(void) {
    swiftrcu_guard copy = guards[nguards - 1];
    if (nguards == 1)
        atomic_store(&open_section, 0); /* before the library ends the section */
    EXPECT_RC(swiftrcu_read_unlock(&guards[nguards - 1]), SWIFTRCU_OK);
    swiftrcu_guard zero;
    memset(&zero, 0, sizeof zero);
    if (memcmp(&guards[nguards - 1], &zero, sizeof zero) != 0)
        fail("an unlocked guard was not zeroed");
    nguards--;
    spent[nspent++ % 8] = copy;
}

/* ---- expectations shared by the operations ---- */

/* The object a dereference of `t` must return right now. */
static void *expected_object(struct target t) {
    if (t.kind == T_LIVE)
        return ptrs[t.var].cur;
    return NULL;
}

static void retire_obj(struct obj *o, int deferred) {
    if (o == NULL)
        return;
    atomic_store(&o->section, deferred && nguards > 0 ? atomic_load(&open_section) : 0);
    atomic_store(&o->state, O_RETIRING);
}

/* After a synchronous destroy path returned OK: the object must be gone (or kept, without destroy). */
static void expect_destroyed_now(struct obj *o, int has_destroy) {
    if (o == NULL)
        return;
    int d = atomic_load(&o->destroyed);
    if (has_destroy && d != 1)
        fail("object %d not destroyed by a synchronous free (count %d)", o->id, d);
    if (!has_destroy && d != 0)
        fail("object %d destroyed although its pointer has no destroy function", o->id);
    if (!has_destroy)
        atomic_store(&o->state, O_DESTROYED); /* the model is done with it */
}

static void run_program(int depth);

/* ---- operations ---- */

static void op_new(void) {
    current_op = "new";
    int var = -1;
    for (int i = 0; i < NPTR; i++)
        if (ptrs[i].h == NULL) {
            var = i;
            break;
        }
    uint8_t b = byte();
    if (var < 0)
        return;
    struct obj *o = (b & 1) ? new_obj() : NULL;
    int with_destroy = (b & 2) != 0 || (b & 4) != 0;
    if (o) {
        o->has_destroy = with_destroy;
        o->context = &contexts[var];
        atomic_store(&o->state, O_PUBLISHED);
    }
    swiftrcu_ptr *h = swiftrcu_new(o, with_destroy ? destroy_fn : NULL, &contexts[var]);
    if (h == NULL)
        fail("swiftrcu_new returned NULL");
    if (is_live_handle((uintptr_t)h))
        fail("swiftrcu_new returned a handle that is already live");
    ptrs[var] = (struct ptr_var){.h = h, .has_destroy = with_destroy, .cur = o};
}

static void op_free(void) {
    current_op = "free";
    struct target t = pick_ptr();
    if (t.kind == T_NULL) {
        EXPECT_RC(swiftrcu_free(NULL), SWIFTRCU_EINVAL);
        return;
    }
    if (t.kind != T_LIVE) {
        int rc = swiftrcu_free((swiftrcu_ptr *)t.h);
        if (rc != SWIFTRCU_EINVAL && !(in_section() && rc == SWIFTRCU_EDEADLK))
            fail("free of a %s handle returned %d", t.kind == T_STALE ? "stale" : "non-ptr", rc);
        return;
    }
    struct ptr_var *p = &ptrs[t.var];
    if (in_section()) {
        EXPECT_RC(swiftrcu_free(p->h), SWIFTRCU_EDEADLK);
        if (p->cur && atomic_load(&p->cur->destroyed) != 0)
            fail("refused free destroyed object %d", p->cur->id);
        return;
    }
    struct obj *cur = p->cur;
    retire_obj(cur, 0);
    EXPECT_RC(swiftrcu_free(p->h), SWIFTRCU_OK);
    expect_destroyed_now(cur, p->has_destroy);
    add_stale((uintptr_t)p->h);
    *p = (struct ptr_var){0};
}

static int free_old_slot(void) {
    for (int i = 0; i < NOLD; i++)
        if (olds[i].h == NULL)
            return i;
    return -1;
}

/* Records the outcome of a successful publication that unpublished `prev`. */
static void published(struct ptr_var *p, struct obj *next, struct obj *prev, swiftrcu_old *old, int slot) {
    if (prev == NULL) {
        if (old != NULL)
            fail("publishing over NULL returned an old handle");
    } else {
        if (old == NULL)
            fail("publishing over object %d returned no old handle", prev->id);
        if (is_live_handle((uintptr_t)old))
            fail("the new old handle is already live");
        if (swiftrcu_old_object(old) != prev)
            fail("the old handle does not hold the previous object %d", prev->id);
        atomic_store(&prev->state, O_OLD);
        if (slot >= 0) {
            olds[slot] = (struct old_var){.h = old, .obj = prev};
        } else {
            /* No variable free: hand it straight back (deferred, allowed anywhere). */
            retire_obj(prev, 1);
            EXPECT_RC(swiftrcu_old_defer(old), SWIFTRCU_OK);
            add_stale((uintptr_t)old);
        }
    }
    if (next) {
        next->has_destroy = p->has_destroy;
        next->context = &contexts[p - ptrs];
        atomic_store(&next->state, O_PUBLISHED);
    }
    p->cur = next;
}

static void op_replace(void) {
    current_op = "replace";
    struct target t = pick_ptr();
    uint8_t b = byte();
    struct obj *next = (b & 3) ? new_obj() : NULL;
    swiftrcu_old *sentinel = (swiftrcu_old *)(uintptr_t)0x5;
    swiftrcu_old *old = sentinel;
    if (b & 0x80) {
        EXPECT_RC(swiftrcu_replace((swiftrcu_ptr *)t.h, next, NULL), SWIFTRCU_EINVAL);
        return;
    }
    int rc = swiftrcu_replace((swiftrcu_ptr *)t.h, next, &old);
    if (t.kind != T_LIVE) {
        EXPECT_RC(rc, SWIFTRCU_EINVAL);
        if (old != NULL)
            fail("old_out not set to NULL on error");
        return;
    }
    if (in_own_callback(t.var)) {
        EXPECT_RC(rc, SWIFTRCU_EDEADLK);
        if (old != NULL)
            fail("old_out not set to NULL on EDEADLK");
        return;
    }
    EXPECT_RC(rc, SWIFTRCU_OK);
    published(&ptrs[t.var], next, ptrs[t.var].cur, old, free_old_slot());
}

/* ---- copy_update ---- */

struct cu_ctx {
    int var;
    int mode;
    int calls;
    struct obj *next;
    int depth;
};

static void *update_fn(const void *current, void *context) {
    struct cu_ctx *c = context;
    c->calls++;
    if (c->calls > 1)
        fail("copy_update called its callback twice");
    struct ptr_var *p = &ptrs[c->var];
    if (current != p->cur)
        fail("copy_update callback got %p, the model publishes %p", current, (void *)p->cur);
    if (current && ((const struct obj *)current)->magic != OBJ_MAGIC)
        fail("copy_update callback got a destroyed object");
    cb_stack[cb_depth++] = c->var;
    if (c->mode == 3 && c->depth < MAX_CALLBACK_DEPTH)
        run_program(c->depth + 1); /* a nested program, inside the callback */
    cb_depth--;
    current_op = "copy_update (back in the callback)";
    /* The nested program may have changed the model of this very pointer only by refused calls. */
    if (ptrs[c->var].cur != current)
        fail("the nested program changed the pointer whose callback is running");
    switch (c->mode) {
    case 0:
        return (void *)current;
    case 2:
        return NULL;
    default:
        return c->next;
    }
}

static void op_copy_update(int depth) {
    current_op = "copy_update";
    struct target t = pick_ptr();
    uint8_t b = byte();
    struct cu_ctx c = {.var = t.var, .mode = b & 3, .depth = depth};
    c.next = (c.mode == 1 || c.mode == 3) && (b & 4) == 0 ? new_obj() : NULL;
    swiftrcu_old *old = (swiftrcu_old *)(uintptr_t)0x5;
    if (b & 0x40) {
        EXPECT_RC(swiftrcu_copy_update((swiftrcu_ptr *)t.h, NULL, &c, &old), SWIFTRCU_EINVAL);
        if (old != NULL)
            fail("old_out not set to NULL for a NULL update");
        return;
    }
    if (b & 0x80) {
        EXPECT_RC(swiftrcu_copy_update((swiftrcu_ptr *)t.h, update_fn, &c, NULL), SWIFTRCU_EINVAL);
        if (c.calls)
            fail("callback called although old_out is NULL");
        return;
    }
    int rc = swiftrcu_copy_update((swiftrcu_ptr *)t.h, update_fn, &c, &old);
    current_op = "copy_update";
    if (t.kind != T_LIVE || in_own_callback(t.var)) {
        EXPECT_RC(rc, t.kind != T_LIVE ? SWIFTRCU_EINVAL : SWIFTRCU_EDEADLK);
        if (c.calls)
            fail("callback called on an error");
        if (old != NULL)
            fail("old_out not set to NULL on error");
        return;
    }
    EXPECT_RC(rc, SWIFTRCU_OK);
    if (c.calls != 1)
        fail("callback called %d times", c.calls);
    struct ptr_var *p = &ptrs[t.var];
    struct obj *next = c.mode == 0 ? p->cur : c.mode == 2 ? NULL : c.next;
    if (next == p->cur) {
        if (old != NULL)
            fail("returning the current object published something");
        return;
    }
    /* A variable for the old handle is chosen only now: the callback's program may have used one. */
    published(p, next, p->cur, old, free_old_slot());
}

/* ---- old handles ---- */

static void op_old_free(void) {
    current_op = "old_free";
    struct target t = pick_old();
    if (t.kind == T_NULL) {
        EXPECT_RC(swiftrcu_old_free(NULL), SWIFTRCU_EINVAL);
        return;
    }
    if (t.kind != T_LIVE) {
        int rc = swiftrcu_old_free((swiftrcu_old *)t.h);
        if (rc != SWIFTRCU_EINVAL && !(in_section() && rc == SWIFTRCU_EDEADLK))
            fail("old_free of a non-live handle returned %d", rc);
        return;
    }
    struct old_var *o = &olds[t.var];
    if (in_section()) {
        EXPECT_RC(swiftrcu_old_free(o->h), SWIFTRCU_EDEADLK);
        if (swiftrcu_old_object(o->h) != o->obj)
            fail("refused old_free changed the handle");
        return;
    }
    retire_obj(o->obj, 0);
    EXPECT_RC(swiftrcu_old_free(o->h), SWIFTRCU_OK);
    expect_destroyed_now(o->obj, o->obj->has_destroy);
    add_stale((uintptr_t)o->h);
    *o = (struct old_var){0};
}

static void op_old_defer(void) {
    current_op = "old_defer";
    struct target t = pick_old();
    if (t.kind != T_LIVE) {
        EXPECT_RC(swiftrcu_old_defer((swiftrcu_old *)t.h), SWIFTRCU_EINVAL);
        return;
    }
    struct old_var *o = &olds[t.var];
    retire_obj(o->obj, 1);
    EXPECT_RC(swiftrcu_old_defer(o->h), SWIFTRCU_OK);
    if (!o->obj->has_destroy)
        atomic_store(&o->obj->state, O_DESTROYED);
    add_stale((uintptr_t)o->h);
    *o = (struct old_var){0};
}

static void op_old_object(void) {
    current_op = "old_object";
    struct target t = pick_old();
    void *got = swiftrcu_old_object((swiftrcu_old *)t.h);
    void *want = t.kind == T_LIVE ? olds[t.var].obj : NULL;
    if (got != want)
        fail("old_object returned %p, expected %p", got, want);
}

/* ---- read side ---- */

static void op_read_lock(void) {
    current_op = "read_lock";
    if (nguards >= LIBRARY_MAX_NESTING) {
        swiftrcu_guard g = swiftrcu_read_lock();
        swiftrcu_guard zero;
        memset(&zero, 0, sizeof zero);
        if (memcmp(&g, &zero, sizeof g) != 0)
            fail("read_lock past %d nested sections did not return a zeroed guard", LIBRARY_MAX_NESTING);
        return;
    }
    push_guard(swiftrcu_read_lock());
}

static void op_read_unlock(void) {
    current_op = "read_unlock";
    uint8_t b = byte();
    swiftrcu_guard zero;
    memset(&zero, 0, sizeof zero);
    switch (b % 6) {
    case 0:
    case 1:
        if (nguards > 0)
            unlock_innermost();
        else
            EXPECT_RC(swiftrcu_read_unlock(&zero), SWIFTRCU_EPERM);
        break;
    case 2: /* out of order */
        if (nguards > 1) {
            int i = (b >> 3) % (nguards - 1);
            swiftrcu_guard before = guards[i];
            EXPECT_RC(swiftrcu_read_unlock(&guards[i]), SWIFTRCU_EPERM);
            if (memcmp(&before, &guards[i], sizeof before) != 0)
                fail("refused unlock changed the guard");
        }
        break;
    case 3: /* a spent copy */
        if (nspent > 0) {
            swiftrcu_guard g = spent[(b >> 3) % (nspent < 8 ? nspent : 8)];
            EXPECT_RC(swiftrcu_read_unlock(&g), SWIFTRCU_EPERM);
        }
        break;
    case 4:
        EXPECT_RC(swiftrcu_read_unlock(NULL), SWIFTRCU_EINVAL);
        break;
    default: {
        swiftrcu_guard g = (b & 8) ? foreign : zero;
        EXPECT_RC(swiftrcu_read_unlock(&g), SWIFTRCU_EPERM);
        break;
    }
    }
}

/* A guard argument for dereference: held ones work, the others give NULL. */
static const swiftrcu_guard *pick_guard(int *valid) {
    static swiftrcu_guard tmp;
    uint8_t b = byte();
    *valid = 0;
    switch (b % 5) {
    case 0:
    case 1:
        if (nguards > 0) {
            *valid = 1;
            return &guards[(b >> 3) % nguards]; /* innermost or an outer one */
        }
        memset(&tmp, 0, sizeof tmp);
        return &tmp;
    case 2:
        if (nspent > 0) {
            tmp = spent[(b >> 3) % (nspent < 8 ? nspent : 8)];
            return &tmp;
        }
        return NULL;
    case 3:
        tmp = foreign;
        return &tmp;
    default:
        return NULL;
    }
}

static void op_dereference(void) {
    current_op = "dereference";
    struct target t = pick_ptr();
    int valid;
    const swiftrcu_guard *g = pick_guard(&valid);
    void *got = swiftrcu_dereference((const swiftrcu_ptr *)t.h, g);
    void *want = valid ? expected_object(t) : NULL;
    if (got != want)
        fail("dereference returned %p, expected %p (guard %s)", got, want, valid ? "held" : "not held");
    if (got && ((struct obj *)got)->magic != OBJ_MAGIC)
        fail("dereference returned a destroyed object");
}

static void op_read_lock_dereference(void) {
    current_op = "read_lock_dereference";
    struct target t = pick_ptr();
    uint8_t b = byte();
    if (b & 1) {
        if (swiftrcu_read_lock_dereference((const swiftrcu_ptr *)t.h, NULL) != NULL)
            fail("read_lock_dereference with a NULL guard_out returned an object");
        return;
    }
    swiftrcu_guard g;
    void *got = swiftrcu_read_lock_dereference((const swiftrcu_ptr *)t.h, &g);
    if (nguards >= LIBRARY_MAX_NESTING) {
        swiftrcu_guard zero;
        memset(&zero, 0, sizeof zero);
        if (got != NULL || memcmp(&g, &zero, sizeof g) != 0)
            fail("read_lock_dereference past the nesting limit entered a section");
        return;
    }
    push_guard(g);
    if (got != expected_object(t))
        fail("read_lock_dereference returned %p, expected %p", got, expected_object(t));
}

static void op_load(void) {
    current_op = "load";
    struct target t = pick_ptr();
    void *got = swiftrcu_load((const swiftrcu_ptr *)t.h);
    if (got != expected_object(t))
        fail("load returned %p, expected %p", got, expected_object(t));
}

/* ---- load_retained and bound loaders ---- */

static int null_stand_in; /* a loader's if_null */

static atomic_int retain_calls;
static void *retain_last;

/* The retain function: checks that the object is one that no destroy has run for. */
static void retain_fn(void *p) {
    struct obj *o = p;
    if (p != &null_stand_in) {
        if (o < objs || o >= objs + NOBJ)
            fail("retain got a pointer that is no object (%p)", p);
        if (o->magic != OBJ_MAGIC || atomic_load(&o->state) == O_DESTROYED)
            fail("retain of object %d after its destroy", o->id);
    }
    retain_last = p;
    atomic_fetch_add(&retain_calls, 1);
}

/* Checks one load_retained-style result: `want` returned, and retain called once for it (none
 * when want is NULL). */
static void expect_retained(const char *what, void *got, void *want, int calls_before) {
    int calls = atomic_load(&retain_calls) - calls_before;
    if (got != want)
        fail("%s returned %p, expected %p", what, got, want);
    if (calls != (want != NULL))
        fail("%s called retain %d times for %p", what, calls, want);
    if (want != NULL && retain_last != want)
        fail("%s retained %p, not what it returned (%p)", what, retain_last, want);
}

static void op_load_retained(void) {
    current_op = "load_retained";
    struct target t = pick_ptr();
    int with_retain = byte() & 7;
    int before = atomic_load(&retain_calls);
    void *got = swiftrcu_load_retained((const swiftrcu_ptr *)t.h, with_retain ? retain_fn : NULL);
    expect_retained("load_retained", got, with_retain ? expected_object(t) : NULL, before);
}

static const void *section_seen;
static int section_calls;

static void section_fn(const void *object, void *context) {
    const struct obj *o = object;
    if (context != &section_calls)
        fail("read_section passed the wrong context");
    if (o != NULL && (o->magic != OBJ_MAGIC || atomic_load(&o->state) == O_DESTROYED))
        fail("read_section passed object %d after its destroy", o->id);
    section_seen = object;
    section_calls++;
}

static void op_read_section(void) {
    current_op = "read_section";
    struct target t = pick_ptr();
    int with_fn = byte() & 7;
    int before = section_calls;
    section_seen = NULL;
    int want = with_fn && t.kind == T_LIVE ? SWIFTRCU_OK : SWIFTRCU_EINVAL;
    EXPECT_RC(swiftrcu_read_section((const swiftrcu_ptr *)t.h, with_fn ? section_fn : NULL, &section_calls),
              want);
    if (section_calls - before != (want == SWIFTRCU_OK))
        fail("read_section called fn %d times", section_calls - before);
    if (want == SWIFTRCU_OK && section_seen != expected_object(t))
        fail("read_section passed %p, expected %p", section_seen, expected_object(t));
}

/* read_copy: a byte picks the size (0-31, cut to stay inside the object; one call in eight has
 * an offset near SIZE_MAX, one in eight a NULL destination), the next the offset (0-15); the
 * bytes copied must be the object's, and the bytes around them in dst untouched. */
static void op_read_copy(void) {
    current_op = "read_copy";
    struct target t = pick_ptr();
    uint8_t how = byte();
    size_t size = how & 31, offset = byte() & 15;
    int null_dst = (how >> 5) == 6, overflow = (how >> 5) == 7;
    if (offset + size > sizeof(struct obj))
        size = sizeof(struct obj) - offset; /* stay inside the object */
    if (overflow)
        offset = SIZE_MAX - (offset & 3);
    unsigned char dst[48];
    memset(dst, 0xA5, sizeof dst);
    const void *got = swiftrcu_read_copy((const swiftrcu_ptr *)t.h, offset, null_dst ? NULL : dst + 1, size);
    const unsigned char *want = expected_object(t);
    if (want == NULL || overflow || (null_dst && size != 0))
        want = NULL;
    if (got != want)
        fail("read_copy returned %p, expected %p", got, (const void *)want);
    size_t copied = got != NULL && !null_dst ? size : 0;
    if (copied != 0 && memcmp(dst + 1, want + offset, copied) != 0)
        fail("read_copy copied the wrong bytes (offset %zu, size %zu)", offset, size);
    for (size_t i = 0; i < sizeof dst; i++)
        if ((i == 0 || i > copied) && dst[i] != 0xA5) {
            fail("read_copy wrote byte %zu of dst outside the %zu it copied", i, copied);
            break;
        }
}

/* Loaders this input bound, with what they were bound to. */
struct loader_var {
    swiftrcu_loader_fn fn; /* NULL: none */
    uintptr_t h;           /* the ptr handle it was bound to */
    void *if_null;
};

static struct loader_var loader_vars[NLOADER];

/* What a loader bound to handle h returns now. */
static void *loader_expected(const struct loader_var *l) {
    for (int i = 0; i < NPTR; i++)
        if (ptrs[i].h && (uintptr_t)ptrs[i].h == l->h)
            return ptrs[i].cur ? (void *)ptrs[i].cur : l->if_null;
    return l->if_null; /* the ptr was freed */
}

static void op_loader(void) {
    current_op = "loader";
    uint8_t b = byte();
    struct loader_var *l = &loader_vars[b % NLOADER];
    switch ((b >> 3) & 3) {
    case 0: { /* bind */
        if (l->fn)
            return;
        struct target t = pick_ptr();
        uint8_t c = byte();
        swiftrcu_retain_fn retain = (c & 7) ? retain_fn : NULL;
        void *if_null = (c & 8) ? &null_stand_in : NULL;
        swiftrcu_loader_fn fn = (swiftrcu_loader_fn)1;
        int want = t.kind == T_LIVE && retain ? SWIFTRCU_OK : SWIFTRCU_EINVAL;
        EXPECT_RC(swiftrcu_loader_bind((const swiftrcu_ptr *)t.h, retain, if_null,
                                       (c & 0x10) ? NULL : &fn),
                  (c & 0x10) ? SWIFTRCU_EINVAL : want);
        if ((c & 0x10) == 0 && want != SWIFTRCU_OK && fn != NULL)
            fail("loader_bind failed but left %p in *loader_out", (void *)fn);
        if ((c & 0x10) == 0 && want == SWIFTRCU_OK)
            *l = (struct loader_var){.fn = fn, .h = t.h, .if_null = if_null};
        return;
    }
    case 1: { /* unbind: ours, a spent one, or a function that is no loader */
        if (l->fn) {
            EXPECT_RC(swiftrcu_loader_unbind(l->fn), SWIFTRCU_OK);
            EXPECT_RC(swiftrcu_loader_unbind(l->fn), SWIFTRCU_EINVAL);
            *l = (struct loader_var){0};
        } else {
            EXPECT_RC(swiftrcu_loader_unbind((swiftrcu_loader_fn)(void (*)(void))swiftrcu_version),
                      SWIFTRCU_EINVAL);
        }
        return;
    }
    default: { /* call */
        if (!l->fn)
            return;
        int before = atomic_load(&retain_calls);
        expect_retained("a bound loader", l->fn(), loader_expected(l), before);
        return;
    }
    }
}

static void unbind_loaders(void) {
    for (int i = 0; i < NLOADER; i++) {
        if (loader_vars[i].fn)
            EXPECT_RC(swiftrcu_loader_unbind(loader_vars[i].fn), SWIFTRCU_OK);
        loader_vars[i] = (struct loader_var){0};
    }
}

static void op_synchronize(void) {
    current_op = "synchronize";
    EXPECT_RC(swiftrcu_synchronize(), in_section() ? SWIFTRCU_EDEADLK : SWIFTRCU_OK);
}

static void check_deferred_done(void) {
    for (int i = 0; i < nobjs; i++) {
        struct obj *o = &objs[i];
        if (atomic_load(&o->state) == O_RETIRING && o->has_destroy)
            fail("object %d was retired before a barrier and is not destroyed after it", o->id);
    }
}

static void op_barrier(void) {
    current_op = "barrier";
    if (in_section()) {
        EXPECT_RC(swiftrcu_barrier(), SWIFTRCU_EDEADLK);
        return;
    }
    EXPECT_RC(swiftrcu_barrier(), SWIFTRCU_OK);
    check_deferred_done();
}

static void op_register(void) {
    current_op = "thread_register/unregister";
    uint8_t b = byte();
    if (b & 1)
        EXPECT_RC(swiftrcu_thread_register(), SWIFTRCU_OK);
    else
        EXPECT_RC(swiftrcu_thread_unregister(), in_section() ? SWIFTRCU_EPERM : SWIFTRCU_OK);
}

/* Nests up to the limit, checks the refusal past it, and unwinds back. */
static void op_deep(void) {
    current_op = "deep nesting";
    int start = nguards;
    while (nguards < LIBRARY_MAX_NESTING)
        push_guard(swiftrcu_read_lock());
    op_read_lock(); /* past the limit: a zeroed guard */
    swiftrcu_guard zero;
    memset(&zero, 0, sizeof zero);
    EXPECT_RC(swiftrcu_read_unlock(&zero), SWIFTRCU_EPERM);
    if (ptrs[0].h && swiftrcu_dereference(ptrs[0].h, &guards[0]) != ptrs[0].cur)
        fail("dereference under the outermost of 255 guards failed");
    while (nguards > start)
        unlock_innermost();
}

static void op_strerror(void) {
    current_op = "strerror";
    int code = (int)(uint32_t)(word64() & 0xFFFFFFFF);
    const char *s = swiftrcu_strerror(code);
    if (s == NULL)
        fail("strerror returned NULL");
    const char *name = code == 0 ? "SWIFTRCU_OK" : code == SWIFTRCU_EINVAL ? "SWIFTRCU_EINVAL"
                     : code == SWIFTRCU_EPERM ? "SWIFTRCU_EPERM" : code == SWIFTRCU_EDEADLK ? "SWIFTRCU_EDEADLK"
                     : code == SWIFTRCU_ENOMEM ? "SWIFTRCU_ENOMEM" : "SWIFTRCU_UNKNOWN";
    if (strncmp(s, name, strlen(name)) != 0)
        fail("strerror(%d) is '%s', expected it to start with %s", code, s, name);
}

/* Runs operations until the input ends (top level) or a 0xFF byte ends a nested program. */
static void run_program(int depth) {
    int ops = 0;
    while (more() && ops++ < MAX_OPS) {
        uint8_t op = byte();
        if (depth > 0 && op == 0xFF)
            return;
        switch (op % 18) {
        case 0: op_new(); break;
        case 1: op_free(); break;
        case 2: op_replace(); break;
        case 3: op_copy_update(depth); break;
        case 4: op_old_free(); break;
        case 5: op_old_defer(); break;
        case 6: op_old_object(); break;
        case 7: case 8: op_read_lock(); break;
        case 9: case 10: op_read_unlock(); break;
        case 11: op_dereference(); break;
        case 12: op_read_lock_dereference(); break;
        case 13:
            if ((op & 0xC0) == 0x40) op_load_retained();
            else if ((op & 0xC0) == 0x80) op_loader();
            else if ((op & 0xC0) == 0xC0) op_read_section();
            else op_load();
            break;
        case 14: op_synchronize(); break;
        case 15: op_barrier(); break;
        case 16: if (op & 0x80) op_deep(); else op_register(); break;
        default: if ((op & 0xC0) == 0xC0) op_read_copy(); else op_strerror(); break;
        }
    }
}

/* Leaves no section, handle or pending destroy behind, and checks every object's fate. */
static void cleanup(void) {
    current_op = "cleanup";
    unbind_loaders();
    while (nguards > 0)
        unlock_innermost();
    for (int i = 0; i < NOLD; i++) {
        if (olds[i].h) {
            retire_obj(olds[i].obj, 0);
            EXPECT_RC(swiftrcu_old_free(olds[i].h), SWIFTRCU_OK);
            expect_destroyed_now(olds[i].obj, olds[i].obj->has_destroy);
            olds[i] = (struct old_var){0};
        }
    }
    for (int i = 0; i < NPTR; i++) {
        if (ptrs[i].h) {
            retire_obj(ptrs[i].cur, 0);
            EXPECT_RC(swiftrcu_free(ptrs[i].h), SWIFTRCU_OK);
            expect_destroyed_now(ptrs[i].cur, ptrs[i].has_destroy);
            ptrs[i] = (struct ptr_var){0};
        }
    }
    /* The objects are reused by the next input: wait for the deferred destroys (only if any). */
    int deferred = 0;
    for (int i = 0; i < nobjs; i++)
        deferred |= atomic_load(&objs[i].state) == O_RETIRING;
    if (deferred)
        EXPECT_RC(swiftrcu_barrier(), SWIFTRCU_OK);
    for (int i = 0; i < nobjs; i++) {
        struct obj *o = &objs[i];
        int st = atomic_load(&o->state), d = atomic_load(&o->destroyed);
        if (st == O_UNUSED) {
            if (d)
                fail("object %d was never published but was destroyed", i);
            continue; /* made for a call that was refused */
        }
        if (o->has_destroy ? d != 1 : d != 0)
            fail("object %d destroyed %d times (pointer %s a destroy function)", i, d,
                 o->has_destroy ? "has" : "has no");
    }
    nobjs = 0;
    nspent = 0;
    /* Stale handles stay: they must still be refused by the next input. */
}

static void *take_foreign_guard(void *arg) {
    (void)arg;
    foreign = swiftrcu_read_lock();
    swiftrcu_guard copy = foreign;
    swiftrcu_read_unlock(&copy);
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    pthread_t t;
    pthread_create(&t, NULL, take_foreign_guard, NULL);
    pthread_join(t, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    in_data = data;
    in_size = size;
    in_pos = 0;
    run_program(0);
    cleanup();
    return 0;
}
