/* settings: the typed settings document kept in the store under "settings".
 * One table declares every key with its type, bounds and default; a PUT may
 * carry any subset of keys and is validated whole before anything changes. */
#ifndef VD_SETTINGS_H
#define VD_SETTINGS_H

#include <jansson.h>

#include "error.h"
#include "store.h"

#define VD_SETTINGS_KEY "settings"
#define VD_SETTINGS_MAX_BODY 16384

/* New reference: every key at its default. */
json_t *vd_settings_defaults(void);

/* New reference: the stored document (possibly NULL or from an older
 * Valdock) laid over the defaults; unknown stored keys are dropped. */
json_t *vd_settings_from_stored(const json_t *stored);

/* New reference: the settings as stored, laid over the defaults; NULL with
 * err set when the store fails. */
json_t *vd_settings_load(struct vd_store *st, struct vd_error *err);

/* Checks every key of patch against the table (known key, type, bounds):
 * 422 naming the first bad field. */
int vd_settings_check_patch(const json_t *patch, struct vd_error *err);

/* Validates patch (a JSON object) and applies it onto doc. On error doc is
 * unchanged and err names the field (422). */
int vd_settings_apply(json_t *doc, const json_t *patch, struct vd_error *err);

#endif
