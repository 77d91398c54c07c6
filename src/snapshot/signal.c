/* signal.c - Debezium's signal table rows: type and data parsed, data-collections matched */
#include "pgcdc/signal.h"

#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct cdc_signal_pattern {
    regex_t re;
};

void cdc_signal_free(cdc_signal *sig)
{
    if (sig == NULL)
        return;
    for (size_t i = 0; i < sig->ncollections; i++)
        free(sig->collections[i]);
    free(sig->collections);
    free(sig->type);
    free(sig->message);
    memset(sig, 0, sizeof(*sig));
}

static int execute_snapshot(cdc_signal *sig, json_t *root, cdc_error *err)
{
    json_t *kind = json_object_get(root, "type");
    if (kind != NULL && !json_is_null(kind)) {
        const char *k = json_string_value(kind);
        if (k == NULL || (strcasecmp(k, "incremental") != 0 && strcasecmp(k, "blocking") != 0))
            return cdc_err(err, CDC_EINVAL,
                           "its snapshot type is neither \"incremental\" nor \"blocking\"");
        sig->blocking = strcasecmp(k, "blocking") == 0;
    }
    /* pgcdc reads whole tables: a signal asking for part of one is refused, not widened */
    json_t *cond = json_object_get(root, "additional-conditions");
    if (cond != NULL && !(json_is_array(cond) && json_array_size(cond) == 0) &&
        !json_is_null(cond)) {
        cdc_err(err, CDC_EINVAL, "it has additional-conditions, which pgcdc does not apply");
        cdc_err_hint(err, "ask for whole tables (pgcdc reads every row of a table)");
        return CDC_EINVAL;
    }
    json_t *sk = json_object_get(root, "surrogate-key");
    if (sk != NULL && !json_is_null(sk) && !(json_is_string(sk) && json_string_length(sk) == 0)) {
        cdc_err(err, CDC_EINVAL, "it has a surrogate-key, which pgcdc does not use");
        cdc_err_hint(err, "leave it out: pgcdc reads a table in the order of its primary key "
                          "or replica identity index");
        return CDC_EINVAL;
    }
    json_t *list = json_object_get(root, "data-collections");
    if (!json_is_array(list) || json_array_size(list) == 0) {
        cdc_err(err, CDC_EINVAL, "its data has no \"data-collections\" list of tables");
        cdc_err_hint(err, "{\"data-collections\": [\"public.orders\"], \"type\": \"incremental\"}");
        return CDC_EINVAL;
    }
    size_t n = json_array_size(list);
    if ((sig->collections = calloc(n, sizeof(*sig->collections))) == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(list, i));
        if (name == NULL || *name == '\0')
            return cdc_err(err, CDC_EINVAL, "entry %zu of its data-collections is not a table name",
                           i + 1);
        if ((sig->collections[i] = strdup(name)) == NULL)
            return cdc_err(err, CDC_ENOMEM, "out of memory");
        sig->ncollections++;
    }
    return 0;
}

int cdc_signal_parse(const char *type, size_t type_len, const char *data, size_t data_len,
                     cdc_signal *ret, cdc_error *err)
{
    memset(ret, 0, sizeof(*ret));
    if (type == NULL || type_len == 0)
        return cdc_err(err, CDC_EINVAL, "its type is empty");
    if ((ret->type = strndup(type, type_len)) == NULL)
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    if (strcmp(ret->type, "execute-snapshot") == 0)
        ret->kind = CDC_SIGNAL_EXECUTE_SNAPSHOT;
    else if (strcmp(ret->type, "log") == 0)
        ret->kind = CDC_SIGNAL_LOG;
    else {
        ret->kind = CDC_SIGNAL_UNSUPPORTED;
        return 0;
    }
    if (data == NULL || data_len == 0)
        return cdc_err(err, CDC_EINVAL, "its data is empty");
    json_error_t jerr;
    json_t *root = json_loadb(data, data_len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        cdc_err(err, CDC_EINVAL, "its data is not a JSON object%s%s", root == NULL ? ": " : "",
                root == NULL ? jerr.text : "");
        json_decref(root);
        return CDC_EINVAL;
    }
    int rc = 0;
    if (ret->kind == CDC_SIGNAL_LOG) {
        const char *m = json_string_value(json_object_get(root, "message"));
        if (m == NULL)
            rc = cdc_err(err, CDC_EINVAL, "its data has no \"message\" string");
        else if ((ret->message = strdup(m)) == NULL)
            rc = cdc_err(err, CDC_ENOMEM, "out of memory");
    } else {
        rc = execute_snapshot(ret, root, err);
    }
    json_decref(root);
    return rc;
}

int cdc_signal_pattern_new(const char *expr, cdc_signal_pattern **ret, cdc_error *err)
{
    *ret = NULL;
    size_t n = strlen(expr);
    char *anchored = malloc(n + 5);
    cdc_signal_pattern *p = calloc(1, sizeof(*p));
    if (anchored == NULL || p == NULL) {
        free(anchored);
        free(p);
        return cdc_err(err, CDC_ENOMEM, "out of memory");
    }
    /* alone first: "a)|(b" compiles only once wrapped, and would then escape the anchors */
    int rc = regcomp(&p->re, expr, REG_EXTENDED | REG_NOSUB);
    if (rc == 0) {
        regfree(&p->re);
        snprintf(anchored, n + 5, "^(%s)$", expr);
        rc = regcomp(&p->re, anchored, REG_EXTENDED | REG_NOSUB);
    }
    free(anchored);
    if (rc != 0) {
        char msg[256];
        regerror(rc, &p->re, msg, sizeof(msg));
        free(p);
        return cdc_err(err, CDC_EINVAL, "\"%s\" is not a regular expression: %s", expr, msg);
    }
    *ret = p;
    return 0;
}

bool cdc_signal_pattern_match(const cdc_signal_pattern *p, const char *schema, const char *table)
{
    size_t ls = strlen(schema), lt = strlen(table);
    char stack[256];
    char *name = ls + lt + 2 <= sizeof(stack) ? stack : malloc(ls + lt + 2);
    if (name == NULL)
        return false;
    memcpy(name, schema, ls);
    name[ls] = '.';
    memcpy(name + ls + 1, table, lt + 1);
    bool m = regexec(&p->re, name, 0, NULL, 0) == 0;
    if (name != stack)
        free(name);
    return m;
}

void cdc_signal_pattern_free(cdc_signal_pattern *p)
{
    if (p == NULL)
        return;
    regfree(&p->re);
    free(p);
}
