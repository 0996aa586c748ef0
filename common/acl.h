/* acl: Valkey ACL users as Valdock keeps them, and the ACL file rendered
 * from them. A user record is a JSON object:
 *   {"username","enabled":bool,"nopass":bool,"password_hashes":[hex...],
 *    "keys":[...],"channels":[...],"permissions":[...],"created_at","updated_at"}
 * Passwords exist only as lowercase SHA-256 hex (the `#<hash>` form). The
 * file has no comments (the ACL file allows none), one line per user, users
 * in name order, `default` always explicit and the Valdock admin user
 * second (field cases C01-C04). */
#ifndef VD_ACL_H
#define VD_ACL_H

#include <jansson.h>

#include "error.h"

#define VD_ACL_ADMIN_USER "valdock"
#define VD_ACL_NAME_MAX 64
#define VD_ACL_PASSWORD_MAX 512
#define VD_ACL_MAX_USERS 10000

/* Usernames: 1-64 of letters, digits and . _ - @ +, starting with a letter
 * or digit; never Valdock's admin user nor `default`. 422 naming field. */
int vd_acl_check_username(const char *field, const char *name, struct vd_error *err);

/* Passwords: min_len to 512 bytes of UTF-8 without control characters. */
int vd_acl_check_password(const char *field, const char *password, int min_len,
    struct vd_error *err);

/* 1 for a lowercase 64-hex SHA-256. */
int vd_acl_is_hash(const char *s);

/* New reference: a user record with every permission on every key and
 * channel and the one password given (hashed here). */
json_t *vd_acl_user_full_access(const char *username, const char *password, long long now);

/* Renders the ACL file from the user records (a JSON array) and the admin
 * user's password hash into a new string the caller frees. Refuses (and
 * says why) a duplicate user, a malformed hash or name. */
int vd_acl_render(const json_t *users, const char *admin_hash, char **out, struct vd_error *err);

#endif
