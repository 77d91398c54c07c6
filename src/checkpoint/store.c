/* store.c - checkpoint file: text key = value lines sealed by a CRC-32, atomic replace */
#include "pgcdc/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "pgcdc/crashpoint.h"

#define MAGIC "pgcdc-checkpoint"

static uint32_t crc32_update(uint32_t crc, const char *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= (unsigned char)*p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* Render the body (everything the checksum covers). Returns its length or -1. */
static int render(const cdc_checkpoint *c, char *buf, size_t sz)
{
    char lsn[CDC_LSN_STRLEN];
    int n = snprintf(buf, sz,
                     MAGIC " %d\n"
                           "system_identifier = %" PRIu64 "\n"
                           "timeline = %" PRIu32 "\n"
                           "database = %s\n"
                           "slot = %s\n"
                           "lsn = %s\n"
                           "written_at_ms = %" PRId64 "\n"
                           "stopped_cleanly = %d\n",
                     CDC_CKPT_FORMAT_VERSION, c->system_id, c->timeline, c->database, c->slot,
                     cdc_lsn_format(c->lsn, lsn), c->written_at_ms, c->stopped_cleanly ? 1 : 0);
    if (n < 0 || (size_t)n >= sz)
        return -1;
    if (c->snapshot[0] != '\0') {
        int m = snprintf(buf + n, sz - (size_t)n, "snapshot = %s\n", c->snapshot);
        if (m < 0 || (size_t)m >= sz - (size_t)n)
            return -1;
        n += m;
    }
    return n;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int cdc_ckpt_write(const char *path, const cdc_checkpoint *ckpt, cdc_error *err)
{
    char body[20480], tmp[4096];
    cdc_checkpoint c = *ckpt;
    struct timeval tv;

    if (strchr(c.database, '\n') || strchr(c.slot, '\n') || strchr(c.snapshot, '\n'))
        return cdc_err(err, CDC_EINVAL, "checkpoint names must not contain newlines");
    if (c.written_at_ms == 0) {
        gettimeofday(&tv, NULL);
        c.written_at_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    }
    int n = render(&c, body, sizeof(body) - 32);
    if (n < 0)
        return cdc_err(err, CDC_EINVAL, "checkpoint fields too long");
    n += snprintf(body + n, sizeof(body) - (size_t)n, "crc32 = %08" PRIx32 "\n",
                  crc32_update(0, body, (size_t)n));
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return cdc_err(err, CDC_EINVAL, "checkpoint path too long");

    /* owner-only for a new file; a rewrite keeps the mode the file has (an operator's
     * chmod g+r stays) */
    mode_t mode = 0600;
    struct stat st;
    if (stat(path, &st) == 0)
        mode = st.st_mode & 07777;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd >= 0 && fchmod(fd, mode) < 0) {
        cdc_err(err, CDC_EIO, "cannot set the mode of checkpoint file \"%s\": %s", tmp,
                strerror(errno));
        close(fd);
        unlink(tmp);
        return CDC_EIO;
    }
    if (fd < 0)
        return cdc_err(err, CDC_EIO, "cannot create checkpoint file \"%s\": %s", tmp,
                       strerror(errno));
    if (write_all(fd, body, (size_t)n) < 0) {
        cdc_err(err, CDC_EIO, "cannot write checkpoint file \"%s\": %s", tmp, strerror(errno));
        goto error;
    }
    cdc_crashpoint("checkpoint-after-write");
    if (fsync(fd) < 0) {
        cdc_err(err, CDC_EIO, "cannot fsync checkpoint file \"%s\": %s", tmp, strerror(errno));
        goto error;
    }
    cdc_crashpoint("checkpoint-after-fsync");
    if (close(fd) < 0) {
        fd = -1;
        cdc_err(err, CDC_EIO, "cannot close checkpoint file \"%s\": %s", tmp, strerror(errno));
        goto error;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        cdc_err(err, CDC_EIO, "cannot rename \"%s\" to \"%s\": %s", tmp, path, strerror(errno));
        goto error;
    }
    cdc_crashpoint("checkpoint-after-rename");
    if (fsync_dir_of(path) < 0)
        return cdc_err(err, CDC_EIO, "cannot fsync the directory of \"%s\": %s", path,
                       strerror(errno));
    return 0;

error:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return CDC_EIO;
}

/* Parse "key = value" into the struct; unknown keys are an error (newer format). */
static int parse_line(cdc_checkpoint *c, char *line, unsigned *seen)
{
    char *eq = strstr(line, " = ");
    if (eq == NULL)
        return -1;
    *eq = '\0';
    const char *k = line, *v = eq + 3;
    char *end;
    if (strcmp(k, "system_identifier") == 0) {
        errno = 0;
        c->system_id = strtoull(v, &end, 10);
        if (errno || *end)
            return -1;
        *seen |= 1;
    } else if (strcmp(k, "timeline") == 0) {
        c->timeline = (uint32_t)strtoul(v, &end, 10);
        if (*end)
            return -1;
        *seen |= 2;
    } else if (strcmp(k, "database") == 0) {
        snprintf(c->database, sizeof(c->database), "%s", v);
        *seen |= 4;
    } else if (strcmp(k, "slot") == 0) {
        snprintf(c->slot, sizeof(c->slot), "%s", v);
        *seen |= 8;
    } else if (strcmp(k, "lsn") == 0) {
        if (cdc_lsn_parse(v, &c->lsn) < 0)
            return -1;
        *seen |= 16;
    } else if (strcmp(k, "written_at_ms") == 0) {
        c->written_at_ms = strtoll(v, &end, 10);
        if (*end)
            return -1;
        *seen |= 32;
    } else if (strcmp(k, "stopped_cleanly") == 0 && c->version >= 2) {
        if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
            return -1;
        c->stopped_cleanly = v[0] == '1';
        *seen |= 64;
    } else if (strcmp(k, "snapshot") == 0 && c->version >= 3) {
        if ((size_t)snprintf(c->snapshot, sizeof(c->snapshot), "%s", v) >= sizeof(c->snapshot))
            return -1;
    } else {
        return -1;
    }
    return 0;
}

int cdc_ckpt_read(const char *path, cdc_checkpoint *ret, cdc_error *err)
{
    char data[32768];
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT)
            return CDC_ENOTFOUND;
        return cdc_err(err, CDC_EIO, "cannot open checkpoint file \"%s\": %s", path,
                       strerror(errno));
    }
    size_t n = fread(data, 1, sizeof(data) - 1, f);
    int rd_err = ferror(f);
    fclose(f);
    if (rd_err)
        return cdc_err(err, CDC_EIO, "cannot read checkpoint file \"%s\"", path);
    data[n] = '\0';

    /* The checksum line covers every byte before it. */
    char *crcline = strstr(data, "crc32 = ");
    if (crcline == NULL || (crcline != data && crcline[-1] != '\n'))
        goto corrupt;
    char *end;
    uint32_t want = (uint32_t)strtoul(crcline + 8, &end, 16);
    /* the checksum line is the last: nothing may follow it, so the CRC covers the file */
    if (end != crcline + 16 || *end != '\n' || (size_t)(end + 1 - data) != n ||
        n == sizeof(data) - 1)
        goto corrupt;
    if (crc32_update(0, data, (size_t)(crcline - data)) != want)
        goto corrupt;
    *crcline = '\0';

    cdc_checkpoint c = {0};
    unsigned seen = 0;
    char *save = NULL;
    char *line = strtok_r(data, "\n", &save);
    if (line == NULL || strncmp(line, MAGIC " ", strlen(MAGIC) + 1) != 0)
        goto corrupt;
    c.version = atoi(line + strlen(MAGIC) + 1);
    if (c.version < 1 || c.version > CDC_CKPT_FORMAT_VERSION)
        return cdc_err(err, CDC_EPROTO,
                       "checkpoint file \"%s\" has format version %d; this pgcdc reads versions "
                       "1 to %d",
                       path, c.version, CDC_CKPT_FORMAT_VERSION);
    while ((line = strtok_r(NULL, "\n", &save)) != NULL)
        if (parse_line(&c, line, &seen) < 0)
            goto corrupt;
    /* version 1 has no stopped_cleanly line: read as not stopped cleanly */
    if (seen != (c.version >= 2 ? 127u : 63u))
        goto corrupt;
    c.version = CDC_CKPT_FORMAT_VERSION;
    *ret = c;
    return 0;

corrupt:
    cdc_err(err, CDC_EPROTO, "checkpoint file \"%s\" is corrupt", path);
    cdc_err_hint(err, "pgcdc never leaves a partial checkpoint; the file was changed by something "
                      "else. Restore it or remove it to start from the slot's position");
    return CDC_EPROTO;
}
