/* catalog: the Valkey parameters Valdock manages, as one typed table: name,
 * type, bounds or allowed values, whether CONFIG SET applies it to a running
 * server or it needs a restart, and whether its value is secret. Only
 * catalogued keys are accepted from a client; the keys that would let a
 * client move files, load code or change who may connect are refused by
 * name (field case C08). */
#ifndef VD_CATALOG_H
#define VD_CATALOG_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

#define VD_CATALOG_VALUE_MAX 1024

enum vd_param_type {
	VD_PARAM_BOOL,     /* yes | no */
	VD_PARAM_INT,      /* within [min, max] */
	VD_PARAM_BYTES,    /* 512mb, 1gb, 1048576 within [min, max] bytes */
	VD_PARAM_ENUM,     /* one of the words in values */
	VD_PARAM_SAVE,     /* "" or pairs "seconds changes ..." */
	VD_PARAM_CHARS,    /* letters from values, any order, may be empty */
	VD_PARAM_STRING,   /* printable text up to max bytes */
};

struct vd_param_def {
	const char *name;
	enum vd_param_type type;
	long long min, max;
	const char *values;   /* ENUM: space-separated words; CHARS: allowed letters */
	int live;             /* CONFIG SET applies it; else a restart does */
	int sensitive;        /* masked in every answer */
	const char *help;
};

/* The definition of name, or NULL when it is not catalogued. */
const struct vd_param_def *vd_catalog_find(const char *name);

/* The whole table, for listings. */
const struct vd_param_def *vd_catalog_all(size_t *n);

/* Checks one client-given key and value (a JSON string, or a number or
 * boolean where the type allows one) and writes its canonical text form
 * (what CONFIG SET and the config file get) into out. 403 refused_key for
 * a key Valdock owns or never allows, 422 naming the key for anything else
 * wrong. */
int vd_catalog_check(const char *name, const json_t *value, char *out, size_t outsz,
    struct vd_error *err);

/* Checks every key of a config object; on success *norm is a new object of
 * canonical text values. */
int vd_catalog_check_all(const json_t *config, json_t **norm, struct vd_error *err);

/* Appends `name "value"` to a config file text, quoting and escaping the
 * value so spaces, quotes, '$' and backslashes survive Valkey's parser
 * (field case C07). Returns the bytes written, -1 when out is too small. */
int vd_catalog_render_line(const char *name, const char *value, char *out, size_t outsz);

/* Are two values of name the same setting? Compares sizes by bytes and
 * words case-insensitively, as CONFIG GET reports them. */
int vd_catalog_same(const char *name, const char *a, const char *b);

#endif
