/* pgo_fixture.c - parser for the text fixtures written by scripts/capture-fixtures.py */
#include "pgo_fixture.h"
#include "pgcdc/hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *pgo_read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[65536];
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *p = realloc(buf, cap);
            if (p == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf == NULL && (buf = malloc(1)) == NULL)
        return NULL;
    buf[len] = '\0';
    if (ret_len)
        *ret_len = len;
    return buf;
}

/* Parse one "<lsn> <hex>" line (NUL-terminated, no newline) into m. */
static int parse_line(char *line, pgo_msg *m)
{
    char *sp = strchr(line, ' ');
    if (sp == NULL)
        return -1;
    *sp = '\0';
    if (cdc_lsn_parse(line, &m->lsn) < 0)
        return -1;
    const char *hex = sp + 1;
    size_t n = strlen(hex);
    if (n == 0 || n % 2)
        return -1;
    m->len = n / 2;
    m->data = malloc(m->len);
    if (m->data == NULL)
        return -1;
    for (size_t i = 0; i < m->len; i++) {
        int hi = cdc_hex_digit(hex[2 * i]), lo = cdc_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(m->data);
            return -1;
        }
        m->data[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int pgo_fixture_load(const char *path, pgo_fixture *ret)
{
    char *text = pgo_read_file(path, NULL);
    pgo_fixture f = {NULL, 0};
    size_t cap = 0;
    int lineno = 0;

    if (text == NULL) {
        fprintf(stderr, "cannot read fixture \"%s\"\n", path);
        return -1;
    }
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r')
            line[--l] = '\0';
        if (l == 0 || line[0] == '#')
            continue;
        if (f.nmsgs == cap) {
            cap = cap ? cap * 2 : 32;
            pgo_msg *p = realloc(f.msgs, cap * sizeof(*p));
            if (p == NULL)
                goto error;
            f.msgs = p;
        }
        if (parse_line(line, &f.msgs[f.nmsgs]) < 0) {
            fprintf(stderr, "%s:%d: expected \"<lsn> <hex>\"\n", path, lineno);
            goto error;
        }
        f.nmsgs++;
    }
    free(text);
    *ret = f;
    return 0;
error:
    free(text);
    pgo_fixture_free(&f);
    return -1;
}

void pgo_fixture_free(pgo_fixture *f)
{
    for (size_t i = 0; i < f->nmsgs; i++)
        free(f->msgs[i].data);
    free(f->msgs);
    f->msgs = NULL;
    f->nmsgs = 0;
}
