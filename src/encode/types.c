/* types.c - column types to representations, and parsers of PostgreSQL's text output forms */
#include <pthread.h>
#include <string.h>

#include "encode_int.h"

/* ---------------------------------------------------------------------------
 * Type table
 * ------------------------------------------------------------------------- */

#define T(k)                                                                                       \
    {                                                                                              \
        CDC_ENC_KIND_##k, CDC_ENC_KIND_TEXT, ','                                                   \
    }
#define A(k)                                                                                       \
    {                                                                                              \
        CDC_ENC_KIND_ARRAY, CDC_ENC_KIND_##k, ','                                                  \
    }
#define A_DELIM(k, d)                                                                              \
    {                                                                                              \
        CDC_ENC_KIND_ARRAY, CDC_ENC_KIND_##k, d                                                    \
    }

/*
 * Built-in type OIDs (pg_type.dat) and their representation, sorted by OID
 * for the binary search below (the unit tests check the order). A built-in
 * type that is not here is sent in its text form; so are the elements of an
 * array whose element type is not here.
 */
static const struct {
    uint32_t oid;
    cdc_enc_type type;
} cdc_enc_types[] = {
    {16, T(BOOL)},              /* bool */
    {17, T(BYTEA)},             /* bytea */
    {20, T(INT)},               /* int8 */
    {21, T(INT)},               /* int2 */
    {23, T(INT)},               /* int4 */
    {26, T(INT)},               /* oid */
    {143, A(TEXT)},             /* _xml */
    {199, A(TEXT)},             /* _json */
    {271, A(TEXT)},             /* _xid8 */
    {600, T(POINT)},            /* point */
    {629, A(TEXT)},             /* _line */
    {651, A(TEXT)},             /* _cidr */
    {700, T(FLOAT4)},           /* float4 */
    {701, T(FLOAT8)},           /* float8 */
    {719, A(TEXT)},             /* _circle */
    {775, A(TEXT)},             /* _macaddr8 */
    {790, T(MONEY)},            /* money */
    {791, A(MONEY)},            /* _money */
    {1000, A(BOOL)},            /* _bool */
    {1001, A(BYTEA)},           /* _bytea */
    {1002, A(TEXT)},            /* _char */
    {1003, A(TEXT)},            /* _name */
    {1005, A(INT)},             /* _int2 */
    {1006, A(TEXT)},            /* _int2vector */
    {1007, A(INT)},             /* _int4 */
    {1009, A(TEXT)},            /* _text */
    {1010, A(TEXT)},            /* _tid */
    {1011, A(TEXT)},            /* _xid */
    {1012, A(TEXT)},            /* _cid */
    {1013, A(TEXT)},            /* _oidvector */
    {1014, A(TEXT)},            /* _bpchar */
    {1015, A(TEXT)},            /* _varchar */
    {1016, A(INT)},             /* _int8 */
    {1017, A(POINT)},           /* _point */
    {1018, A(TEXT)},            /* _lseg */
    {1019, A(TEXT)},            /* _path */
    {1020, A_DELIM(TEXT, ';')}, /* _box: box text contains ',' */
    {1021, A(FLOAT4)},          /* _float4 */
    {1022, A(FLOAT8)},          /* _float8 */
    {1027, A(TEXT)},            /* _polygon */
    {1028, A(INT)},             /* _oid */
    {1034, A(TEXT)},            /* _aclitem */
    {1040, A(TEXT)},            /* _macaddr */
    {1041, A(TEXT)},            /* _inet */
    {1082, T(DATE)},            /* date */
    {1083, T(TIME)},            /* time */
    {1114, T(TIMESTAMP)},       /* timestamp */
    {1115, A(TIMESTAMP)},       /* _timestamp */
    {1182, A(DATE)},            /* _date */
    {1183, A(TIME)},            /* _time */
    {1184, T(TIMESTAMPTZ)},     /* timestamptz */
    {1185, A(TIMESTAMPTZ)},     /* _timestamptz */
    {1186, T(INTERVAL)},        /* interval */
    {1187, A(INTERVAL)},        /* _interval */
    {1231, A(NUMERIC)},         /* _numeric */
    {1263, A(TEXT)},            /* _cstring */
    {1266, T(TIMETZ)},          /* timetz */
    {1270, A(TIMETZ)},          /* _timetz */
    {1560, T(BIT)},             /* bit */
    {1561, A(BIT)},             /* _bit */
    {1562, T(BIT)},             /* varbit */
    {1563, A(BIT)},             /* _varbit */
    {1700, T(NUMERIC)},         /* numeric */
    {2201, A(TEXT)},            /* _refcursor */
    {2287, A(TEXT)},            /* _record */
    {2949, A(TEXT)},            /* _txid_snapshot */
    {2951, A(TEXT)},            /* _uuid */
    {3221, A(TEXT)},            /* _pg_lsn */
    {3643, A(TEXT)},            /* _tsvector */
    {3645, A(TEXT)},            /* _tsquery */
    {3807, A(TEXT)},            /* _jsonb */
    {3905, A(TEXT)},            /* _int4range */
    {3907, A(TEXT)},            /* _numrange */
    {3909, A(TEXT)},            /* _tsrange */
    {3911, A(TEXT)},            /* _tstzrange */
    {3913, A(TEXT)},            /* _daterange */
    {3927, A(TEXT)},            /* _int8range */
    {4073, A(TEXT)},            /* _jsonpath */
    {5039, A(TEXT)},            /* _pg_snapshot */
    {6150, A(TEXT)},            /* _int4multirange */
    {6151, A(TEXT)},            /* _nummultirange */
    {6152, A(TEXT)},            /* _tsmultirange */
    {6153, A(TEXT)},            /* _tstzmultirange */
    {6155, A(TEXT)},            /* _datemultirange */
    {6157, A(TEXT)},            /* _int8multirange */
};

#undef T
#undef A
#undef A_DELIM

#define CDC_ENC_NTYPES (sizeof(cdc_enc_types) / sizeof(cdc_enc_types[0]))

/*
 * Built-in type names that a domain can have as its base type (pgoutput
 * names a domain column's type by its base type; built-in ones come without
 * a schema), sorted by strcmp. Only names whose type is not TEXT are listed:
 * any other name starting with '_' is an array of strings.
 */
static const struct {
    const char *name;
    uint32_t oid;
} cdc_enc_type_names[] = {
    {"_bit", 1561},        {"_bool", 1000},        {"_box", 1020},      {"_bytea", 1001},
    {"_date", 1182},       {"_float4", 1021},      {"_float8", 1022},   {"_int2", 1005},
    {"_int4", 1007},       {"_int8", 1016},        {"_interval", 1187}, {"_money", 791},
    {"_numeric", 1231},    {"_oid", 1028},         {"_point", 1017},    {"_time", 1183},
    {"_timestamp", 1115},  {"_timestamptz", 1185}, {"_timetz", 1270},   {"_varbit", 1563},
    {"bit", 1560},         {"bool", 16},           {"bytea", 17},       {"date", 1082},
    {"float4", 700},       {"float8", 701},        {"int2", 21},        {"int4", 23},
    {"int8", 20},          {"interval", 1186},     {"money", 790},      {"numeric", 1700},
    {"oid", 26},           {"point", 600},         {"time", 1083},      {"timestamp", 1114},
    {"timestamptz", 1184}, {"timetz", 1266},       {"varbit", 1562},
};

#define CDC_ENC_NNAMES (sizeof(cdc_enc_type_names) / sizeof(cdc_enc_type_names[0]))

static const cdc_enc_type cdc_enc_text_type = {CDC_ENC_KIND_TEXT, CDC_ENC_KIND_TEXT, ','};

/*
 * Index into cdc_enc_types by OID (plus one; 0 for none) for the OIDs below
 * CDC_ENC_DIRECT, built once: one load per value instead of a binary search.
 */
#define CDC_ENC_DIRECT 6160
static uint8_t cdc_enc_direct[CDC_ENC_DIRECT];
static pthread_once_t cdc_enc_direct_once = PTHREAD_ONCE_INIT;

static void cdc_enc_direct_build(void)
{
    for (size_t i = 0; i < CDC_ENC_NTYPES; i++)
        if (cdc_enc_types[i].oid < CDC_ENC_DIRECT)
            cdc_enc_direct[cdc_enc_types[i].oid] = (uint8_t)(i + 1);
}

static const cdc_enc_type *cdc_enc_find_oid(uint32_t oid)
{
    if (oid < CDC_ENC_DIRECT) {
        pthread_once(&cdc_enc_direct_once, cdc_enc_direct_build);
        uint8_t k = cdc_enc_direct[oid];
        return k ? &cdc_enc_types[k - 1].type : NULL;
    }
    size_t lo = 0, hi = CDC_ENC_NTYPES;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cdc_enc_types[mid].oid == oid)
            return &cdc_enc_types[mid].type;
        if (cdc_enc_types[mid].oid < oid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static uint32_t cdc_enc_find_name(const char *name)
{
    size_t lo = 0, hi = CDC_ENC_NNAMES;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(cdc_enc_type_names[mid].name, name);
        if (c == 0)
            return cdc_enc_type_names[mid].oid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

cdc_enc_kind cdc_enc__kind(uint32_t type_oid)
{
    const cdc_enc_type *t = cdc_enc_find_oid(type_oid);
    return t ? (cdc_enc_kind)t->kind : CDC_ENC_KIND_TEXT;
}

cdc_enc_type cdc_enc__type(uint32_t type_oid, const char *type_name)
{
    const cdc_enc_type *t = cdc_enc_find_oid(type_oid);
    if (t != NULL)
        return *t;
    if (type_name == NULL || type_name[0] == '\0')
        return cdc_enc_text_type;

    cdc_enc_type arr = {CDC_ENC_KIND_ARRAY, CDC_ENC_KIND_TEXT, ','};
    const char *dot = strrchr(type_name, '.');
    if (dot == NULL) {
        /* no schema: pg_catalog, i.e. the built-in base type of a domain */
        uint32_t base = cdc_enc_find_name(type_name);
        if (base != 0 && (t = cdc_enc_find_oid(base)) != NULL)
            return *t;
        return type_name[0] == '_' ? arr : cdc_enc_text_type;
    }
    const char *base = dot + 1;
    if (strcmp(base, "hstore") == 0)
        return (cdc_enc_type){CDC_ENC_KIND_HSTORE, CDC_ENC_KIND_TEXT, ','};
    if (strcmp(base, "_hstore") == 0)
        return (cdc_enc_type){CDC_ENC_KIND_ARRAY, CDC_ENC_KIND_HSTORE, ','};
    /* arrays of enums, composites, ranges and extension types: of their text */
    return base[0] == '_' ? arr : cdc_enc_text_type;
}

bool cdc_enc__types_sorted(void)
{
    _Static_assert(CDC_ENC_NTYPES < 255, "the direct index holds uint8_t");
    for (size_t i = 1; i < CDC_ENC_NTYPES; i++)
        if (cdc_enc_types[i - 1].oid >= cdc_enc_types[i].oid)
            return false;
    for (size_t i = 1; i < CDC_ENC_NNAMES; i++)
        if (strcmp(cdc_enc_type_names[i - 1].name, cdc_enc_type_names[i].name) >= 0)
            return false;
    for (size_t i = 0; i < CDC_ENC_NNAMES; i++)
        if (cdc_enc_find_oid(cdc_enc_type_names[i].oid) == NULL)
            return false;
    return true;
}

/* ---------------------------------------------------------------------------
 * Calendar
 * ------------------------------------------------------------------------- */

/* Howard Hinnant's days_from_civil / civil_from_days, proleptic Gregorian. */
int64_t cdc_enc__days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                            /* [0, 399] */
    int64_t doy = (153 * (int64_t)(m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;                    /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

void cdc_enc__civil_from_days(int64_t z, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    unsigned d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *ret_y = y + (m <= 2);
    *ret_m = m;
    *ret_d = d;
}

/* ---------------------------------------------------------------------------
 * Scanning helpers
 * ------------------------------------------------------------------------- */

static inline bool cdc_enc_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Read 1..max digits at s[*i]; returns false if there are none or more than max. */
static bool cdc_enc_digits(const char *s, size_t n, size_t *i, size_t max, int64_t *ret)
{
    size_t k = 0;
    int64_t v = 0;
    while (*i < n && cdc_enc_digit(s[*i])) {
        if (++k > max)
            return false;
        v = v * 10 + (s[*i] - '0');
        (*i)++;
    }
    *ret = v;
    return k > 0;
}

/* Read exactly two digits. */
static bool cdc_enc_two(const char *s, size_t n, size_t *i, int64_t *ret)
{
    if (*i + 2 > n || !cdc_enc_digit(s[*i]) || !cdc_enc_digit(s[*i + 1]))
        return false;
    *ret = (s[*i] - '0') * 10 + (s[*i + 1] - '0');
    *i += 2;
    return true;
}

static bool cdc_enc_lit(const char *s, size_t n, size_t *i, const char *lit)
{
    size_t k = strlen(lit);
    if (*i + k > n || memcmp(s + *i, lit, k) != 0)
        return false;
    *i += k;
    return true;
}

/* "infinity" / "-infinity" as the whole text: CDC_ENC_INF_POS / _NEG, else FINITE. */
static int cdc_enc_infinity(const char *s, size_t n)
{
    if (n == 8 && memcmp(s, "infinity", 8) == 0)
        return CDC_ENC_INF_POS;
    if (n == 9 && memcmp(s, "-infinity", 9) == 0)
        return CDC_ENC_INF_NEG;
    return CDC_ENC_FINITE;
}

/* "YYYY-MM-DD" (the year may have more digits); *ret_y is the year as printed. */
static bool cdc_enc_ymd(const char *s, size_t n, size_t *i, int64_t *y, int64_t *m, int64_t *d)
{
    return cdc_enc_digits(s, n, i, 9, y) && cdc_enc_lit(s, n, i, "-") && cdc_enc_two(s, n, i, m) &&
           cdc_enc_lit(s, n, i, "-") && cdc_enc_two(s, n, i, d) && *m >= 1 && *m <= 12 && *d >= 1 &&
           *d <= 31;
}

/* "HH:MM:SS[.f{1,6}]" with HH <= 24; microseconds in *ret. */
static bool cdc_enc_hms(const char *s, size_t n, size_t *i, int64_t *ret)
{
    int64_t h, m, sec, frac = 0;
    if (!cdc_enc_two(s, n, i, &h) || !cdc_enc_lit(s, n, i, ":") || !cdc_enc_two(s, n, i, &m) ||
        !cdc_enc_lit(s, n, i, ":") || !cdc_enc_two(s, n, i, &sec) || h > 24 || m > 59 || sec > 60)
        return false;
    if (*i < n && s[*i] == '.') {
        (*i)++;
        size_t start = *i;
        if (!cdc_enc_digits(s, n, i, 6, &frac))
            return false;
        for (size_t k = *i - start; k < 6; k++)
            frac *= 10;
    }
    *ret = ((h * 60 + m) * 60 + sec) * 1000000 + frac;
    return true;
}

/* "+HH[:MM[:SS]]" / "-..."; seconds east of UTC in *ret. */
static bool cdc_enc_offset(const char *s, size_t n, size_t *i, int32_t *ret)
{
    if (*i >= n || (s[*i] != '+' && s[*i] != '-'))
        return false;
    bool neg = s[(*i)++] == '-';
    int64_t h, m = 0, sec = 0;
    if (!cdc_enc_two(s, n, i, &h))
        return false;
    if (*i < n && s[*i] == ':') {
        (*i)++;
        if (!cdc_enc_two(s, n, i, &m))
            return false;
        if (*i < n && s[*i] == ':') {
            (*i)++;
            if (!cdc_enc_two(s, n, i, &sec))
                return false;
        }
    }
    if (m > 59 || sec > 59)
        return false;
    int32_t v = (int32_t)((h * 60 + m) * 60 + sec);
    *ret = neg ? -v : v;
    return true;
}

/* ---------------------------------------------------------------------------
 * Parsers
 * ------------------------------------------------------------------------- */

bool cdc_enc__parse_int64(const char *s, size_t n, int64_t *ret)
{
    size_t i = 0;
    bool neg = n > 0 && s[0] == '-';
    i = neg;
    if (i == n || n - i > 19)
        return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (!cdc_enc_digit(s[i]))
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return false;
    *ret = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

bool cdc_enc__is_decimal(const char *s, size_t n)
{
    size_t i = n > 0 && s[0] == '-';
    size_t d = i;
    while (i < n && cdc_enc_digit(s[i]))
        i++;
    if (i == d)
        return false;
    if (i < n && s[i] == '.') {
        d = ++i;
        while (i < n && cdc_enc_digit(s[i]))
            i++;
        if (i == d)
            return false;
    }
    return i == n;
}

int cdc_enc__parse_date(const char *s, size_t n, cdc_enc_ts *ret)
{
    int inf = cdc_enc_infinity(s, n);
    if (inf)
        return inf;
    size_t i = 0;
    int64_t y, m, d;
    if (!cdc_enc_ymd(s, n, &i, &y, &m, &d))
        return -1;
    bool bc = cdc_enc_lit(s, n, &i, " BC");
    if (i != n || (bc && y == 0))
        return -1;
    ret->days = cdc_enc__days_from_civil(bc ? 1 - y : y, (unsigned)m, (unsigned)d);
    ret->us = 0;
    return CDC_ENC_FINITE;
}

int cdc_enc__parse_time(const char *s, size_t n, cdc_enc_ts *ret)
{
    size_t i = 0;
    if (!cdc_enc_hms(s, n, &i, &ret->us) || i != n || ret->us > CDC_ENC_US_PER_DAY)
        return -1;
    ret->days = 0;
    return CDC_ENC_FINITE;
}

int cdc_enc__parse_timetz(const char *s, size_t n, cdc_enc_ts *ret, int32_t *ret_offset)
{
    size_t i = 0;
    if (!cdc_enc_hms(s, n, &i, &ret->us) || ret->us > CDC_ENC_US_PER_DAY ||
        !cdc_enc_offset(s, n, &i, ret_offset) || i != n)
        return -1;
    ret->days = 0;
    return CDC_ENC_FINITE;
}

int cdc_enc__parse_timestamp(const char *s, size_t n, bool tz, cdc_enc_ts *ret)
{
    int inf = cdc_enc_infinity(s, n);
    if (inf)
        return inf;
    size_t i = 0;
    int64_t y, m, d, us;
    int32_t off = 0;
    if (!cdc_enc_ymd(s, n, &i, &y, &m, &d) || !cdc_enc_lit(s, n, &i, " ") ||
        !cdc_enc_hms(s, n, &i, &us) || us >= CDC_ENC_US_PER_DAY)
        return -1;
    if (tz && !cdc_enc_offset(s, n, &i, &off))
        return -1;
    bool bc = cdc_enc_lit(s, n, &i, " BC");
    if (i != n || (bc && y == 0))
        return -1;
    int64_t days = cdc_enc__days_from_civil(bc ? 1 - y : y, (unsigned)m, (unsigned)d);
    us -= (int64_t)off * 1000000;
    if (us < 0) {
        us += CDC_ENC_US_PER_DAY;
        days--;
    } else if (us >= CDC_ENC_US_PER_DAY) {
        us -= CDC_ENC_US_PER_DAY;
        days++;
    }
    ret->days = days;
    ret->us = us;
    return CDC_ENC_FINITE;
}

int cdc_enc__parse_interval(const char *s, size_t n, cdc_enc_interval *ret)
{
    int inf = cdc_enc_infinity(s, n);
    if (inf)
        return inf;
    int64_t months = 0, days = 0, us = 0;
    bool any = false, have_time = false;
    size_t i = 0;
    while (i < n) {
        if (any && !cdc_enc_lit(s, n, &i, " "))
            return -1;
        bool neg = false;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            neg = s[i++] == '-';
        int64_t v;
        if (!cdc_enc_digits(s, n, &i, 10, &v))
            return -1;
        if (i < n && s[i] == ':') {
            /* the time part: [+-]H+:MM:SS[.ffffff], the sign applies to all of it */
            int64_t mi, sec, frac = 0;
            i++;
            if (have_time || !cdc_enc_two(s, n, &i, &mi) || !cdc_enc_lit(s, n, &i, ":") ||
                !cdc_enc_two(s, n, &i, &sec) || mi > 59 || sec > 59)
                return -1;
            if (i < n && s[i] == '.') {
                i++;
                size_t start = i;
                if (!cdc_enc_digits(s, n, &i, 6, &frac))
                    return -1;
                for (size_t k = i - start; k < 6; k++)
                    frac *= 10;
            }
            int64_t t, rest = (mi * 60 + sec) * 1000000 + frac;
            /* summed on the side of the sign: INT64_MIN µs is a valid interval */
            if (__builtin_mul_overflow(neg ? -v : v, INT64_C(3600000000), &t) ||
                (neg ? __builtin_sub_overflow(t, rest, &t) : __builtin_add_overflow(t, rest, &t)))
                return -1;
            us = t;
            have_time = true;
        } else {
            if (neg)
                v = -v;
            if (!cdc_enc_lit(s, n, &i, " "))
                return -1;
            if (cdc_enc_lit(s, n, &i, "years") || cdc_enc_lit(s, n, &i, "year"))
                months += v * 12;
            else if (cdc_enc_lit(s, n, &i, "mons") || cdc_enc_lit(s, n, &i, "mon"))
                months += v;
            else if (cdc_enc_lit(s, n, &i, "days") || cdc_enc_lit(s, n, &i, "day"))
                days += v;
            else
                return -1;
        }
        any = true;
    }
    if (!any || months < INT32_MIN || months > INT32_MAX || days < INT32_MIN || days > INT32_MAX)
        return -1;
    ret->months = (int32_t)months;
    ret->days = (int32_t)days;
    ret->us = us;
    return CDC_ENC_FINITE;
}

size_t cdc_enc__parse_money(const char *s, size_t n, char *out)
{
    size_t first = n, last = 0;
    for (size_t i = 0; i < n; i++)
        if (cdc_enc_digit(s[i])) {
            if (first == n)
                first = i;
            last = i;
        }
    if (first == n)
        return 0;
    bool neg = memchr(s, '(', first) != NULL || memchr(s, '-', first) != NULL ||
               memchr(s + last, '-', n - last) != NULL;

    /* the decimal separator: the last '.' or ',' between the digits, unless it groups thousands */
    size_t dec = n;
    for (size_t i = last; i > first; i--)
        if (s[i] == '.' || s[i] == ',') {
            dec = i;
            break;
        }
    if (dec != n) {
        size_t after = 0;
        for (size_t i = dec + 1; i <= last; i++)
            after += cdc_enc_digit(s[i]);
        bool other = false, same = false;
        for (size_t i = first; i < dec; i++) {
            other = other || ((s[i] == '.' || s[i] == ',') && s[i] != s[dec]);
            same = same || s[i] == s[dec];
        }
        bool lead_zero = dec == first + 1 && s[first] == '0';
        if (!other && after == 3 && (same || !lead_zero))
            dec = n; /* "1,234" / "1.234.567": grouping, no fraction */
    }

    size_t k = 0, digits = 0;
    if (neg)
        out[k++] = '-';
    size_t int_start = k;
    for (size_t i = first; i <= last && i < dec; i++) {
        if (!cdc_enc_digit(s[i]))
            continue;
        if (k == int_start + 1 && out[int_start] == '0')
            k--; /* no leading zeros */
        if (++digits > 28)
            return 0;
        out[k++] = s[i];
    }
    if (k == int_start)
        out[k++] = '0';
    if (dec != n) {
        out[k++] = '.';
        for (size_t i = dec + 1; i <= last; i++)
            if (cdc_enc_digit(s[i])) {
                if (++digits > 28)
                    return 0;
                out[k++] = s[i];
            }
    }
    return k;
}

/* ---------------------------------------------------------------------------
 * Formatting
 * ------------------------------------------------------------------------- */

static size_t cdc_enc_put_uint(char *out, uint64_t v, int width)
{
    char tmp[24];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k < width)
        tmp[k++] = '0';
    for (int j = 0; j < k; j++)
        out[j] = tmp[k - 1 - j];
    return (size_t)k;
}

size_t cdc_enc__fmt_date(char *out, int64_t days)
{
    int64_t y;
    unsigned m, d;
    size_t k = 0;
    cdc_enc__civil_from_days(days, &y, &m, &d);
    if (y > 9999)
        out[k++] = '+';
    else if (y < 0)
        out[k++] = '-';
    k += cdc_enc_put_uint(out + k, (uint64_t)(y < 0 ? -y : y), 4);
    out[k++] = '-';
    k += cdc_enc_put_uint(out + k, m, 2);
    out[k++] = '-';
    k += cdc_enc_put_uint(out + k, d, 2);
    return k;
}

size_t cdc_enc__fmt_time(char *out, int64_t us, int digits)
{
    size_t k = 0;
    int64_t sec = us / 1000000, frac = us % 1000000;
    k += cdc_enc_put_uint(out + k, (uint64_t)(sec / 3600), 2);
    out[k++] = ':';
    k += cdc_enc_put_uint(out + k, (uint64_t)(sec / 60 % 60), 2);
    out[k++] = ':';
    k += cdc_enc_put_uint(out + k, (uint64_t)(sec % 60), 2);
    if (digits < 0) {
        if (frac == 0)
            return k;
        digits = 6;
        while (frac % 10 == 0) {
            frac /= 10;
            digits--;
        }
    } else {
        for (int j = digits; j < 6; j++)
            frac /= 10;
    }
    if (digits > 0) {
        out[k++] = '.';
        k += cdc_enc_put_uint(out + k, (uint64_t)frac, digits);
    }
    return k;
}
