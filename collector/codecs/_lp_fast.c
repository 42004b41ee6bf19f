/* Influx line protocol body -> sample columns, in one pass, for the common lines only.
 *
 * Why C: the exact Python parser (line_protocol.py) reads ~100,000 lines/s on one core; InfluxDB
 * takes several times that. This scans the body once and writes columns (~20x faster per line).
 * line_protocol.py stays the reference: every line this does not handle exactly as it would is
 * handed back by number for the Python parser, and tests compare both paths on generated bodies.
 *
 * Lines handled here: printable ASCII with no backslash and no double quote, tabs only among the
 * leading blanks, `series-key fields [timestamp]` separated by runs of spaces, a valid tag set
 * (no empty, duplicate or reserved key, no `=` in a value), numeric and boolean fields with
 * distinct, non-reserved keys, an in-range timestamp. Everything else, including every bad line
 * (so error reasons come from one place), is a fallback line. Blank and comment lines are skipped.
 *
 * A Scanner remembers, from one body to the next, every (raw series key, field key) pair it has
 * seen under a dense id, so its caller can keep per-pair results (names, labels, fingerprints) in
 * arrays indexed by that id and map a whole body with array operations. The ids are valid for one
 * `generation`: when more than max_entries keys, fields and pairs are remembered, a parse starts
 * by forgetting them all and bumps the generation. A Scanner is not thread-safe (callers lock).
 *
 * Scanner(max_entries).parse(body: bytes, scale: int, default_ns: int) ->
 *     (generation: int, new_pairs: list[(pair_id, key: bytes, field: bytes)], pair_id: bytes,
 *      value: bytes, kind: bytes, timestamp_ns: bytes, line: bytes, fallback: list[int],
 *      untimed: list[int], accepted: int, exact: bytes)
 * new_pairs are the pairs first seen in this body (raw key `measurement,tags` exactly as written).
 * One row per sample: pair_id and line (1-based) int32, value float64 (booleans 1/0), kind uint8
 * (the field's type as written: KIND_FLOAT 0, KIND_INTEGER 1 `i`, KIND_UNSIGNED 2 `u`,
 * KIND_BOOLEAN 3; strings never reach this path), timestamp_ns int64 (already scaled; lines
 * without one get default_ns and their number in `untimed`), all native-endian.
 * `exact`: the integer and unsigned values the float64 `value` does not hold exactly (beyond 2**53
 * in magnitude, with more than 53 significant bits), as (row int64, bits uint64) pairs in row
 * order: the value's 64 bits, two's complement for an integer (kind 1), plain for an unsigned (2).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Everything from here to scanner_parse runs without the GIL: raw memory only, and no Python API.
 * Functions return -1 when out of memory; the caller raises MemoryError once it holds the GIL. */

typedef struct { char *data; Py_ssize_t len, cap; } Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *data = PyMem_RawRealloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

static int buf_i32(Buf *b, int32_t v) { return buf_put(b, &v, 4); }

/* Interning of byte strings (open addressing, power-of-two capacity); a slot owns a copy.
 * id >= 0: the string's id; id == -1: known invalid (its lines fall back). `by_id` finds a valid
 * string's slot copy by id; `list` holds the first `listed` of them as bytes (filled with the GIL). */
typedef struct { char *p; Py_ssize_t n; uint64_t h; int32_t id; } Slot;
typedef struct { const char *p; Py_ssize_t n; } Str;
typedef struct {
    Slot *slots;
    Py_ssize_t cap, used;
    Str *by_id;
    Py_ssize_t count, by_id_cap;
    PyObject *list;
} Table;

static uint64_t hash_bytes(const char *p, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL;  /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) { h ^= (unsigned char)p[i]; h *= 1099511628211ULL; }
    return h ^ (h >> 29);
}

static int table_init(Table *t) {  /* with the GIL */
    memset(t, 0, sizeof *t);
    t->cap = 1024;
    t->slots = PyMem_RawCalloc(t->cap, sizeof(Slot));
    t->list = PyList_New(0);
    if (!t->slots || !t->list) { PyErr_NoMemory(); return -1; }
    return 0;
}

static void table_free(Table *t) {  /* with the GIL */
    if (t->slots)
        for (Py_ssize_t i = 0; i < t->cap; i++) PyMem_RawFree(t->slots[i].p);
    PyMem_RawFree(t->slots);
    PyMem_RawFree(t->by_id);
    t->slots = NULL;
    t->by_id = NULL;
    Py_CLEAR(t->list);
}

static int table_grow(Table *t) {
    Py_ssize_t cap = t->cap * 2;
    Slot *slots = PyMem_RawCalloc(cap, sizeof(Slot));
    if (!slots) return -1;
    for (Py_ssize_t i = 0; i < t->cap; i++) {
        Slot *s = &t->slots[i];
        if (!s->p) continue;
        Py_ssize_t j = (Py_ssize_t)(s->h & (uint64_t)(cap - 1));
        while (slots[j].p) j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    PyMem_RawFree(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

/* The slot of p[0:n], with *fresh set when it is new (the caller sets its id); NULL when out of
 * memory. A slot pointer stays valid until the next table_find on the same table. */
static Slot *table_find(Table *t, const char *p, Py_ssize_t n, int *fresh) {
    uint64_t h = hash_bytes(p, n);
    Py_ssize_t j = (Py_ssize_t)(h & (uint64_t)(t->cap - 1));
    *fresh = 0;
    while (t->slots[j].p) {
        Slot *s = &t->slots[j];
        if (s->h == h && s->n == n && memcmp(s->p, p, n) == 0) return s;
        j = (j + 1) & (t->cap - 1);
    }
    if ((t->used + 1) * 2 > t->cap) {
        if (table_grow(t) < 0) return NULL;
        return table_find(t, p, n, fresh);
    }
    Slot *s = &t->slots[j];
    s->p = PyMem_RawMalloc(n ? n : 1);
    if (!s->p) return NULL;
    memcpy(s->p, p, n);
    s->n = n;
    s->h = h;
    s->id = -1;
    t->used++;
    *fresh = 1;
    return s;
}

/* Give a fresh valid slot the next id. */
static int table_add(Table *t, Slot *s) {
    if (t->count == t->by_id_cap) {
        Py_ssize_t cap = t->by_id_cap ? t->by_id_cap * 2 : 1024;
        Str *by_id = PyMem_RawRealloc(t->by_id, cap * sizeof(Str));
        if (!by_id) return -1;
        t->by_id = by_id;
        t->by_id_cap = cap;
    }
    t->by_id[t->count].p = s->p;
    t->by_id[t->count].n = s->n;
    s->id = (int32_t)t->count++;
    return 0;
}

/* With the GIL: the strings given ids since the last call, appended to `list` as bytes. */
static int table_list(Table *t) {
    for (Py_ssize_t i = PyList_GET_SIZE(t->list); i < t->count; i++) {
        PyObject *b = PyBytes_FromStringAndSize(t->by_id[i].p, t->by_id[i].n);
        if (!b) return -1;
        int rc = PyList_Append(t->list, b);
        Py_DECREF(b);
        if (rc < 0) return -1;
    }
    return 0;
}

static int is_reserved(const char *p, Py_ssize_t n) {
    return (n == 4 && memcmp(p, "time", 4) == 0) || (n == 6 && memcmp(p, "_field", 6) == 0) ||
           (n == 12 && memcmp(p, "_measurement", 12) == 0);
}

/* A series key as the fast path accepts it: non-empty measurement; tags `k=v` with non-empty k
 * and v, no `=` in v, no reserved or repeated k. (The bytes are already known to be plain.) */
static int valid_series_key(const char *p, Py_ssize_t n) {
    const char *end = p + n, *c = memchr(p, ',', n);
    if (!c) c = end;
    if (c == p) return 0;
    const char *keys[64];
    Py_ssize_t lens[64];
    int count = 0;
    while (c < end) {
        const char *k = c + 1, *e = k;
        while (e < end && *e != ',') e++;
        const char *eq = memchr(k, '=', e - k);
        if (!eq || eq == k || eq + 1 == e || memchr(eq + 1, '=', e - eq - 1)) return 0;
        Py_ssize_t kl = eq - k;
        if (is_reserved(k, kl)) return 0;
        if (count == 64) return 0;  /* unusual: let Python judge it */
        for (int i = 0; i < count; i++)
            if (lens[i] == kl && memcmp(keys[i], k, kl) == 0) return 0;
        keys[count] = k;
        lens[count++] = kl;
        c = e;
    }
    return 1;
}

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Field kinds, as line_protocol_columns.KIND_CODES numbers them. */
#define KIND_FLOAT 0
#define KIND_INTEGER 1
#define KIND_UNSIGNED 2
#define KIND_BOOLEAN 3

/* Whether a 64-bit magnitude has more significant bits than a double's 53: then (double)m rounds. */
static int rounds_as_double(uint64_t m) {
    return m > (1ULL << 53) && 64 - __builtin_clzll(m) - __builtin_ctzll(m) > 53;
}

/* Value of an unquoted field token as the Python parser reads it: 1 (in *out, its kind in *kind),
 * 0 if the line must fall back, DEFER for a float that needs the full conversion (done later, with
 * the GIL), EXACT for an integer or unsigned that *out only holds rounded (its 64 bits in *bits:
 * two's complement for an integer). */
#define DEFER 2
#define EXACT 3
static int field_number(const char *p, Py_ssize_t n, double *out, unsigned char *kind, uint64_t *bits) {
    if (n == 0) return 0;
    *kind = KIND_BOOLEAN;
    switch (n) {  /* booleans first, as _field_value checks them first */
    case 1:
        if (*p == 't' || *p == 'T') { *out = 1.0; return 1; }
        if (*p == 'f' || *p == 'F') { *out = 0.0; return 1; }
        break;
    case 4:
        if (!memcmp(p, "true", 4) || !memcmp(p, "True", 4) || !memcmp(p, "TRUE", 4)) { *out = 1.0; return 1; }
        break;
    case 5:
        if (!memcmp(p, "false", 5) || !memcmp(p, "False", 5) || !memcmp(p, "FALSE", 5)) { *out = 0.0; return 1; }
        break;
    }
    char last = p[n - 1];
    if (last == 'i' || last == 'u') {
        *kind = last == 'i' ? KIND_INTEGER : KIND_UNSIGNED;
        const char *d = p, *end = p + n - 1;
        int neg = 0;
        if (last == 'i' && d < end && *d == '-') { neg = 1; d++; }
        if (d == end) return 0;
        uint64_t v = 0;
        for (; d < end; d++) {
            if (!is_digit(*d)) return 0;
            if (v > (UINT64_MAX - 9) / 10) return 0;  /* near the range limits: let Python judge */
            v = v * 10 + (uint64_t)(*d - '0');
        }
        if (last == 'u') {
            *out = (double)v;
            *bits = v;
            return rounds_as_double(v) ? EXACT : 1;
        }
        if (neg) {
            if (v > (uint64_t)INT64_MAX + 1) return 0;
            *out = v == (uint64_t)INT64_MAX + 1 ? (double)INT64_MIN : -(double)(int64_t)v;
            *bits = 0 - v;  /* -v in two's complement, without signed overflow */
            return rounds_as_double(v) ? EXACT : 1;
        }
        if (v > (uint64_t)INT64_MAX) return 0;
        *out = (double)(int64_t)v;
        *bits = v;
        return rounds_as_double(v) ? EXACT : 1;
    }
    /* float: -?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)? */
    *kind = KIND_FLOAT;
    const char *d = p, *end = p + n;
    int neg = 0;
    if (*d == '-') { neg = 1; d++; }
    uint64_t mant = 0;
    int digits = 0, int_digits = 0, frac_digits = 0, scale10 = 0, exact = 1;
    while (d < end && is_digit(*d)) {
        if (mant || *d != '0') {
            if (digits < 19) { mant = mant * 10 + (uint64_t)(*d - '0'); digits++; }
            else { exact = 0; scale10++; }
        }
        d++;
        int_digits++;
    }
    if (d < end && *d == '.') {
        d++;
        while (d < end && is_digit(*d)) {
            if (mant || *d != '0') {
                if (digits < 19) { mant = mant * 10 + (uint64_t)(*d - '0'); digits++; scale10--; }
                else exact = 0;
            } else {
                scale10--;
            }
            d++;
            frac_digits++;
        }
    }
    if (int_digits == 0 && frac_digits == 0) return 0;
    long exp10 = 0;
    if (d < end && (*d == 'e' || *d == 'E')) {
        d++;
        int eneg = 0;
        if (d < end && (*d == '+' || *d == '-')) { eneg = *d == '-'; d++; }
        if (d == end) return 0;
        for (; d < end; d++) {
            if (!is_digit(*d)) return 0;
            if (exp10 < 100000) exp10 = exp10 * 10 + (*d - '0');
        }
        if (eneg) exp10 = -exp10;
    }
    if (d != end) return 0;
    long e = exp10 + scale10;
    double v;
    if (mant == 0) {
        v = 0.0;
    } else if (exact && mant <= (1ULL << 53) && e >= -22 && e <= 22) {
        /* Clinger's fast path: both operands exact, so one correctly rounded operation. */
        v = e >= 0 ? (double)mant * POW10[e] : (double)mant / POW10[-e];
    } else {
        *out = 0.0;
        return DEFER;  /* PyOS_string_to_double, Python's own correctly rounded conversion */
    }
    *out = neg ? -v : v;
    return 1;
}

#define MIN_TIME_NS (INT64_MIN + 2)
#define MAX_TIME_NS (INT64_MAX - 1)

static int timestamp(const char *p, Py_ssize_t n, int64_t scale, int64_t *out) {
    const char *d = p, *end = p + n;
    int neg = 0;
    if (d < end && *d == '-') { neg = 1; d++; }
    if (d == end) return 0;
    uint64_t v = 0;
    for (; d < end; d++) {
        if (!is_digit(*d)) return 0;
        if (v > (UINT64_MAX - 9) / 10) return 0;
        v = v * 10 + (uint64_t)(*d - '0');
    }
    if (v > (uint64_t)INT64_MAX) return 0;
    int64_t t = neg ? -(int64_t)v : (int64_t)v, ns;
    if (__builtin_mul_overflow(t, scale, &ns)) return 0;
    if (ns < MIN_TIME_NS || ns > MAX_TIME_NS) return 0;
    *out = ns;
    return 1;
}

/* A byte the fast path takes inside a line: printable ASCII except backslash and double quote. */
static int plain(unsigned char c) { return c > ' ' && c < 0x7f && c != '\\' && c != '"'; }

/* (key id, field id) -> pair id, open addressing on the packed 64-bit pair. */
typedef struct { uint64_t *packed; int32_t *id; Py_ssize_t cap, used; } PairTable;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return x;
}

static int pairs_init(PairTable *t) {
    t->cap = 4096;
    t->used = 0;
    t->packed = PyMem_RawMalloc(t->cap * sizeof(uint64_t));
    t->id = PyMem_RawMalloc(t->cap * sizeof(int32_t));
    if (!t->packed || !t->id) { PyErr_NoMemory(); return -1; }  /* with the GIL (reset) */
    for (Py_ssize_t i = 0; i < t->cap; i++) t->id[i] = -1;
    return 0;
}

static void pairs_free(PairTable *t) {
    PyMem_RawFree(t->packed);
    PyMem_RawFree(t->id);
    t->packed = NULL;
    t->id = NULL;
}

/* The id of the pair, a new one (*fresh) if unseen; -1 when out of memory. */
static int32_t pairs_find(PairTable *t, int32_t key, int32_t field, int *fresh) {
    uint64_t packed = ((uint64_t)(uint32_t)key << 32) | (uint32_t)field;
    Py_ssize_t j = (Py_ssize_t)(mix64(packed) & (uint64_t)(t->cap - 1));
    *fresh = 0;
    while (t->id[j] >= 0) {
        if (t->packed[j] == packed) return t->id[j];
        j = (j + 1) & (t->cap - 1);
    }
    if ((t->used + 1) * 2 > t->cap) {
        PairTable bigger = {NULL, NULL, t->cap * 2, 0};
        bigger.packed = PyMem_RawMalloc(bigger.cap * sizeof(uint64_t));
        bigger.id = PyMem_RawMalloc(bigger.cap * sizeof(int32_t));
        if (!bigger.packed || !bigger.id) { pairs_free(&bigger); return -1; }
        for (Py_ssize_t i = 0; i < bigger.cap; i++) bigger.id[i] = -1;
        for (Py_ssize_t i = 0; i < t->cap; i++) {
            if (t->id[i] < 0) continue;
            Py_ssize_t k = (Py_ssize_t)(mix64(t->packed[i]) & (uint64_t)(bigger.cap - 1));
            while (bigger.id[k] >= 0) k = (k + 1) & (bigger.cap - 1);
            bigger.packed[k] = t->packed[i];
            bigger.id[k] = t->id[i];
        }
        bigger.used = t->used;
        pairs_free(t);
        *t = bigger;
        return pairs_find(t, key, field, fresh);
    }
    t->packed[j] = packed;
    t->id[j] = (int32_t)t->used++;
    *fresh = 1;
    return t->id[j];
}

typedef struct {
    PyObject_HEAD
    Table keys, fields;
    PairTable pairs;
    int64_t *field_seen;  /* per field id: the last line (stamp) that used it; repeated keys fall back */
    Py_ssize_t field_seen_cap;
    int64_t stamp;        /* counts lines across bodies, so field_seen never needs clearing */
    Py_ssize_t max_entries;
    long generation;
    int busy;             /* a parse is running without the GIL */
} Scanner;

typedef struct {
    Buf pair_id, value, kind, ts, line;  /* per sample */
    Buf new_pairs;                 /* int32 triples: pair id, key id, field id */
    Buf deferred;                  /* Py_ssize_t triples: sample row, token offset in the body, length */
    Buf exact;                     /* (int64 sample row, uint64 bits) of integers a double rounds */
    Buf fallback, untimed;         /* int32 line numbers */
    const char *body;
    long accepted;
} Out;

static int scanner_reset(Scanner *sc) {
    table_free(&sc->keys);
    table_free(&sc->fields);
    pairs_free(&sc->pairs);
    PyMem_RawFree(sc->field_seen);
    sc->field_seen = NULL;
    sc->field_seen_cap = 0;
    sc->generation++;
    if (table_init(&sc->keys) < 0 || table_init(&sc->fields) < 0 || pairs_init(&sc->pairs) < 0) return -1;
    return 0;
}

static int mark_field(Scanner *sc, int32_t id) {
    if (id >= sc->field_seen_cap) {
        Py_ssize_t cap = sc->field_seen_cap ? sc->field_seen_cap * 2 : 64;
        while (cap <= id) cap *= 2;
        int64_t *seen = PyMem_RawRealloc(sc->field_seen, cap * sizeof(int64_t));
        if (!seen) return -1;
        for (Py_ssize_t i = sc->field_seen_cap; i < cap; i++) seen[i] = 0;
        sc->field_seen = seen;
        sc->field_seen_cap = cap;
    }
    if (sc->field_seen[id] == sc->stamp) return 0;
    sc->field_seen[id] = sc->stamp;
    return 1;
}

#define FALLBACK 1

/* One line [p, e) (CR and leading blanks already removed, not empty, not a comment).
 * 0: its samples were appended; FALLBACK: nothing appended; -1: error. */
static int parse_line(Scanner *sc, Out *o, const char *p, const char *e, int32_t line, int64_t scale,
                      int64_t default_ns, int *untimed) {
    const char *k = p;
    while (p < e && plain((unsigned char)*p)) p++;
    if (p == e || *p != ' ') return FALLBACK;
    Py_ssize_t kn = p - k;
    int fresh;
    Slot *ks = table_find(&sc->keys, k, kn, &fresh);
    if (!ks) return -1;
    if (fresh && valid_series_key(k, kn) && table_add(&sc->keys, ks) < 0) return -1;
    if (ks->id < 0) return FALLBACK;
    while (p < e && *p == ' ') p++;
    const char *f = p;
    while (p < e && plain((unsigned char)*p)) p++;
    const char *fe = p;
    if (f == fe || (p < e && *p != ' ')) return FALLBACK;
    while (p < e && *p == ' ') p++;
    int64_t ts = default_ns;
    *untimed = 1;
    if (p < e) {
        const char *t = p;
        while (p < e && *p != ' ') p++;
        if (!timestamp(t, p - t, scale, &ts)) return FALLBACK;
        *untimed = 0;
        while (p < e && *p == ' ') p++;
        if (p != e) return FALLBACK;
    }
    sc->stamp++;
    Py_ssize_t start = o->value.len / 8;
    while (1) {
        const char *c = memchr(f, ',', fe - f);
        if (!c) c = fe;
        const char *eq = memchr(f, '=', c - f);
        double v;
        unsigned char kind;
        uint64_t bits;
        int number = 0;
        if (!eq || eq == f || is_reserved(f, eq - f) ||
            !(number = field_number(eq + 1, c - eq - 1, &v, &kind, &bits)))
            goto fallback;
        Slot *fs = table_find(&sc->fields, f, eq - f, &fresh);
        if (!fs) return -1;
        if (fresh && table_add(&sc->fields, fs) < 0) return -1;
        int first = mark_field(sc, fs->id);
        if (first < 0) return -1;
        if (!first) goto fallback;  /* a repeated field key: in Python the last value wins */
        int32_t pair = pairs_find(&sc->pairs, ks->id, fs->id, &fresh);
        if (pair < 0) return -1;
        if (fresh && (buf_i32(&o->new_pairs, pair) < 0 || buf_i32(&o->new_pairs, ks->id) < 0 ||
                      buf_i32(&o->new_pairs, fs->id) < 0))
            return -1;
        if (number == DEFER) {
            Py_ssize_t d[3] = {o->value.len / 8, eq + 1 - o->body, c - eq - 1};
            if (buf_put(&o->deferred, d, sizeof d) < 0) return -1;
        } else if (number == EXACT) {  /* rare: counters and ids past 2**53 */
            int64_t row = o->value.len / 8;
            if (buf_put(&o->exact, &row, 8) < 0 || buf_put(&o->exact, &bits, 8) < 0) return -1;
        }
        if (buf_put(&o->value, &v, 8) < 0 || buf_reserve(&o->kind, 1) < 0 || buf_put(&o->pair_id, &pair, 4) < 0 ||
            buf_put(&o->ts, &ts, 8) < 0 || buf_put(&o->line, &line, 4) < 0)
            return -1;
        o->kind.data[o->kind.len++] = (char)kind;
        if (c == fe) break;
        f = c + 1;
        if (f == fe) goto fallback;  /* a trailing comma */
    }
    return 0;
fallback:
    /* Pairs interned on the way stay (and stay reported): harmless, they just go unused. */
    o->value.len = o->ts.len = start * 8;
    o->pair_id.len = o->line.len = start * 4;
    o->kind.len = start;
    while (o->deferred.len && ((Py_ssize_t *)o->deferred.data)[o->deferred.len / sizeof(Py_ssize_t) - 3] >= start)
        o->deferred.len -= 3 * sizeof(Py_ssize_t);
    while (o->exact.len && ((int64_t *)o->exact.data)[o->exact.len / 8 - 2] >= start) o->exact.len -= 16;
    return FALLBACK;
}

/* The scan of a whole body: 0, or -1 when out of memory, -2 past INT32_MAX lines. No GIL. */
static int scan(Scanner *sc, Out *o, const char *body, Py_ssize_t size, int64_t scale, int64_t default_ns) {
    const char *p = body, *end = body + size;
    int32_t line = 0;
    while (p <= end) {
        const char *nl = memchr(p, '\n', end - p);
        const char *e = nl ? nl : end;
        if (line == INT32_MAX) return -2;
        line++;
        const char *s = p, *le = e;
        if (le > s && le[-1] == '\r') le--;
        while (s < le && (*s == ' ' || *s == '\t')) s++;
        if (s < le && *s != '#') {
            int untimed_line = 0;
            int rc = parse_line(sc, o, s, le, line, scale, default_ns, &untimed_line);
            if (rc < 0) return -1;
            if (rc == FALLBACK) {
                if (buf_i32(&o->fallback, line) < 0) return -1;
            } else {
                o->accepted++;
                if (untimed_line && buf_i32(&o->untimed, line) < 0) return -1;
            }
        }
        if (!nl) break;
        p = nl + 1;
    }
    return 0;
}

/* With the GIL: convert the deferred floats; a line with one that Python would refuse (overflow
 * to infinity) becomes a fallback line, its rows removed. 0, or -1 with an exception set. */
static int resolve_deferred(Out *o) {
    Py_ssize_t *d = (Py_ssize_t *)o->deferred.data, n = o->deferred.len / (3 * (Py_ssize_t)sizeof(Py_ssize_t));
    double *value = (double *)o->value.data;
    int32_t *lines = (int32_t *)o->line.data;
    Buf bad = {NULL, 0, 0};
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t row = d[3 * i], off = d[3 * i + 1], len = d[3 * i + 2];
        /* The token ends before a byte that cannot continue a number (`,`, space, CR, LF or the
         * body's closing NUL), so the conversion stops exactly at its end. */
        char *stop = NULL;
        double v = PyOS_string_to_double(o->body + off, &stop, NULL);
        if (v == -1.0 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError)) { PyMem_RawFree(bad.data); return -1; }
            PyErr_Clear();
            stop = NULL;
        }
        if (stop != o->body + off + len || v - v != 0.0) {  /* not the whole token, or infinite */
            int32_t l = lines[row];
            if ((!bad.len || ((int32_t *)bad.data)[bad.len / 4 - 1] != l) && buf_i32(&bad, l) < 0) {
                PyMem_RawFree(bad.data);
                PyErr_NoMemory();
                return -1;
            }
        } else {
            value[row] = v;
        }
    }
    if (!bad.len) return 0;
    /* Rows, untimed and fallback lines are all in line order, and so is `bad`. */
    int32_t *b = (int32_t *)bad.data;
    Py_ssize_t nb = bad.len / 4, rows = o->value.len / 8, kept = 0, k = 0;
    int64_t *exact = (int64_t *)o->exact.data;  /* (row, bits) pairs in row order: renumbered alike */
    Py_ssize_t ne = o->exact.len / 16, e = 0, ke = 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        while (k < nb && b[k] < lines[r]) k++;
        int dropped = k < nb && b[k] == lines[r];
        for (; e < ne && exact[2 * e] == r; e++)
            if (!dropped) {
                exact[2 * ke] = kept;
                exact[2 * ke++ + 1] = exact[2 * e + 1];
            }
        if (dropped) continue;
        ((int32_t *)o->pair_id.data)[kept] = ((int32_t *)o->pair_id.data)[r];
        value[kept] = value[r];
        ((unsigned char *)o->kind.data)[kept] = ((unsigned char *)o->kind.data)[r];
        ((int64_t *)o->ts.data)[kept] = ((int64_t *)o->ts.data)[r];
        lines[kept++] = lines[r];
    }
    o->value.len = o->ts.len = kept * 8;
    o->pair_id.len = o->line.len = kept * 4;
    o->kind.len = kept;
    o->exact.len = ke * 16;
    int32_t *u = (int32_t *)o->untimed.data;
    Py_ssize_t nu = o->untimed.len / 4, ku = 0;
    k = 0;
    for (Py_ssize_t i = 0; i < nu; i++) {
        while (k < nb && b[k] < u[i]) k++;
        if (!(k < nb && b[k] == u[i])) u[ku++] = u[i];
    }
    o->untimed.len = ku * 4;
    Buf merged = {NULL, 0, 0};
    int32_t *f = (int32_t *)o->fallback.data;
    Py_ssize_t nf = o->fallback.len / 4, i = 0, j = 0;
    while (i < nf || j < nb) {
        int32_t next = (j >= nb || (i < nf && f[i] < b[j])) ? f[i++] : b[j++];
        if (buf_i32(&merged, next) < 0) {
            PyMem_RawFree(merged.data);
            PyMem_RawFree(bad.data);
            PyErr_NoMemory();
            return -1;
        }
    }
    PyMem_RawFree(o->fallback.data);
    o->fallback = merged;
    o->accepted -= nb;
    PyMem_RawFree(bad.data);
    return 0;
}

static PyObject *bytes_of(Buf *b) { return PyBytes_FromStringAndSize(b->data ? b->data : "", b->len); }

static PyObject *int_list(Buf *b) {
    Py_ssize_t n = b->len / 4;
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyLong_FromLong(((int32_t *)b->data)[i]);
        if (!v) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, i, v);
    }
    return list;
}

static PyObject *new_pairs_list(Scanner *sc, Buf *b) {
    int32_t *t = (int32_t *)b->data;
    Py_ssize_t n = b->len / 12;
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = Py_BuildValue("(iOO)", t[3 * i], PyList_GET_ITEM(sc->keys.list, t[3 * i + 1]),
                                       PyList_GET_ITEM(sc->fields.list, t[3 * i + 2]));
        if (!item) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *scanner_parse(Scanner *sc, PyObject *args) {
    PyObject *data;
    long long scale, default_ns;
    /* bytes, not any buffer: PyOS_string_to_double relies on the NUL after the last byte; the
     * caller keeps the object alive (and bytes are immutable) while the GIL is released. */
    if (!PyArg_ParseTuple(args, "SLL", &data, &scale, &default_ns)) return NULL;
    if (scale <= 0) { PyErr_SetString(PyExc_ValueError, "scale must be positive"); return NULL; }
    if (sc->busy) { PyErr_SetString(PyExc_RuntimeError, "Scanner.parse is not reentrant: lock around it"); return NULL; }
    const char *body = PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (!sc->keys.slots || sc->keys.used + sc->fields.used + sc->pairs.used > sc->max_entries) {
        if (scanner_reset(sc) < 0) return NULL;
    }
    Out o;
    memset(&o, 0, sizeof o);
    o.body = body;
    PyObject *result = NULL;
    int rc;
    sc->busy = 1;
    Py_INCREF(data);
    Py_BEGIN_ALLOW_THREADS
    rc = scan(sc, &o, body, size, scale, default_ns);
    Py_END_ALLOW_THREADS
    Py_DECREF(data);
    sc->busy = 0;
    if (rc == -2) { PyErr_SetString(PyExc_ValueError, "too many lines"); goto done; }
    if (rc < 0) { PyErr_NoMemory(); goto done; }
    if (table_list(&sc->keys) < 0 || table_list(&sc->fields) < 0) goto done;
    if (o.deferred.len && resolve_deferred(&o) < 0) goto done;
    PyObject *new_pairs = new_pairs_list(sc, &o.new_pairs);
    PyObject *fallback = new_pairs ? int_list(&o.fallback) : NULL;
    PyObject *untimed = fallback ? int_list(&o.untimed) : NULL;
    if (untimed)
        result = Py_BuildValue("(lNNNNNNNNlN)", sc->generation, new_pairs, bytes_of(&o.pair_id), bytes_of(&o.value),
                               bytes_of(&o.kind), bytes_of(&o.ts), bytes_of(&o.line), fallback, untimed, o.accepted,
                               bytes_of(&o.exact));
    else {
        Py_XDECREF(new_pairs);
        Py_XDECREF(fallback);
    }
done:
    PyMem_RawFree(o.pair_id.data);
    PyMem_RawFree(o.value.data);
    PyMem_RawFree(o.kind.data);
    PyMem_RawFree(o.ts.data);
    PyMem_RawFree(o.line.data);
    PyMem_RawFree(o.new_pairs.data);
    PyMem_RawFree(o.deferred.data);
    PyMem_RawFree(o.exact.data);
    PyMem_RawFree(o.fallback.data);
    PyMem_RawFree(o.untimed.data);
    return result;
}

static int scanner_init(Scanner *sc, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"max_entries", NULL};
    Py_ssize_t max_entries = 1000000;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n", kwlist, &max_entries)) return -1;
    if (max_entries < 1) { PyErr_SetString(PyExc_ValueError, "max_entries must be positive"); return -1; }
    sc->max_entries = max_entries;
    return 0;
}

static void scanner_dealloc(Scanner *sc) {
    table_free(&sc->keys);
    table_free(&sc->fields);
    pairs_free(&sc->pairs);
    PyMem_RawFree(sc->field_seen);
    Py_TYPE(sc)->tp_free((PyObject *)sc);
}

static PyMethodDef scanner_methods[] = {
    {"parse", (PyCFunction)scanner_parse, METH_VARARGS,
     "parse(body, scale, default_ns) -> (generation, new_pairs, pair_id, value, kind, timestamp_ns, line, "
     "fallback, untimed, accepted, exact)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "collector.codecs._lp_fast.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Scanner(max_entries=1000000): line protocol bodies -> sample columns, with pair ids kept across bodies",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)scanner_init,
    .tp_dealloc = (destructor)scanner_dealloc,
    .tp_methods = scanner_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lp_fast", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__lp_fast(void) {
    if (PyType_Ready(&ScannerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
