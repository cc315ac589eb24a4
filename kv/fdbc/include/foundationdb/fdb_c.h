/*
 * fdb_c.h — FoundationDB's C client API, as idemkv's in-process shim
 * (package github.com/idemkv/idemkv/kv/fdbc) provides it.
 *
 * Written for idemkv from FoundationDB's documented C API (api-c.rst, API
 * version 730): the types, enumerations and functions a client such as the
 * official Go bindings calls, with their documented signatures. It holds
 * declarations only; the definitions are Go functions exported with cgo from
 * kv/fdbc and linked into the program by a blank import of that package.
 * See docs/foundationdb.md.
 */
#ifndef IDEMKV_FDB_C_H
#define IDEMKV_FDB_C_H
#pragma once

#ifndef FDB_API_VERSION
#error "#define FDB_API_VERSION (e.g. 730) before #include <foundationdb/fdb_c.h>"
#elif FDB_API_VERSION < 13
#error "API version no longer supported (upgrade to 13 or later)"
#elif FDB_API_VERSION > 730
#error "this fdb_c.h supports API versions up to 730"
#endif

#include <stdint.h>

#define FDB_LATEST_API_VERSION 730

#ifdef __cplusplus
extern "C" {
#endif

/* Results. fdb_error_t is 0 for success, else a FoundationDB error code. */
typedef int fdb_error_t;
typedef int fdb_bool_t;

/* Opaque handles. */
typedef struct FDB_future FDBFuture;
typedef struct FDB_result FDBResult;
typedef struct FDB_database FDBDatabase;
typedef struct FDB_tenant FDBTenant;
typedef struct FDB_transaction FDBTransaction;

/* A future's completion callback: called once, with the future and the
   parameter given to fdb_future_set_callback, from any thread. */
typedef void (*FDBCallback)(FDBFuture* future, void* callback_parameter);

/* Option, mode and type codes are passed as plain integers; the values are
   FoundationDB's (fdb.options). The constants below are the ones most
   callers name; any code may be passed. */
typedef enum {
	FDB_NET_OPTION_TRACE_ENABLE = 30,
	FDB_NET_OPTION_KNOB = 40,
	FDB_NET_OPTION_DISABLE_MULTI_VERSION_CLIENT_API = 60,
	FDB_NET_OPTION_EXTERNAL_CLIENT_LIBRARY = 62
} FDBNetworkOption;

typedef enum {
	FDB_DB_OPTION_MAX_WATCHES = 20,
	FDB_DB_OPTION_TRANSACTION_TIMEOUT = 500,
	FDB_DB_OPTION_TRANSACTION_RETRY_LIMIT = 501,
	FDB_DB_OPTION_TRANSACTION_MAX_RETRY_DELAY = 502,
	FDB_DB_OPTION_TRANSACTION_SIZE_LIMIT = 503
} FDBDatabaseOption;

typedef enum {
	FDB_TR_OPTION_ACCESS_SYSTEM_KEYS = 301,
	FDB_TR_OPTION_READ_SYSTEM_KEYS = 302,
	FDB_TR_OPTION_TIMEOUT = 500,
	FDB_TR_OPTION_RETRY_LIMIT = 501,
	FDB_TR_OPTION_MAX_RETRY_DELAY = 502,
	FDB_TR_OPTION_SIZE_LIMIT = 503
} FDBTransactionOption;

typedef enum {
	FDB_STREAMING_MODE_WANT_ALL = -2,
	FDB_STREAMING_MODE_ITERATOR = -1,
	FDB_STREAMING_MODE_EXACT = 0,
	FDB_STREAMING_MODE_SMALL = 1,
	FDB_STREAMING_MODE_MEDIUM = 2,
	FDB_STREAMING_MODE_LARGE = 3,
	FDB_STREAMING_MODE_SERIAL = 4
} FDBStreamingMode;

typedef enum {
	FDB_MUTATION_TYPE_ADD = 2,
	FDB_MUTATION_TYPE_BIT_AND = 6,
	FDB_MUTATION_TYPE_BIT_OR = 7,
	FDB_MUTATION_TYPE_BIT_XOR = 8,
	FDB_MUTATION_TYPE_APPEND_IF_FITS = 9,
	FDB_MUTATION_TYPE_MAX = 12,
	FDB_MUTATION_TYPE_MIN = 13,
	FDB_MUTATION_TYPE_SET_VERSIONSTAMPED_KEY = 14,
	FDB_MUTATION_TYPE_SET_VERSIONSTAMPED_VALUE = 15,
	FDB_MUTATION_TYPE_BYTE_MIN = 16,
	FDB_MUTATION_TYPE_BYTE_MAX = 17,
	FDB_MUTATION_TYPE_COMPARE_AND_CLEAR = 20
} FDBMutationType;

typedef enum {
	FDB_CONFLICT_RANGE_TYPE_READ = 0,
	FDB_CONFLICT_RANGE_TYPE_WRITE = 1
} FDBConflictRangeType;

/* fdb_error_predicate tests. */
typedef enum {
	FDB_ERROR_PREDICATE_RETRYABLE = 50000,
	FDB_ERROR_PREDICATE_MAYBE_COMMITTED = 50001,
	FDB_ERROR_PREDICATE_RETRYABLE_NOT_COMMITTED = 50002
} FDBErrorPredicate;

/* Result arrays. FoundationDB lays these out packed to 4 bytes: a key/value
   pair is 24 bytes (key pointer at 0, key length at 8, value pointer at 12,
   value length at 20), a key 12 bytes. */
#pragma pack(push, 4)
typedef struct key {
	const uint8_t* key;
	int key_length;
} FDBKey;

typedef struct keyvalue {
	const uint8_t* key;
	int key_length;
	const uint8_t* value;
	int value_length;
} FDBKeyValue;
#pragma pack(pop)

/* Process. */
const char* fdb_get_error(fdb_error_t code);
fdb_bool_t fdb_error_predicate(int predicate_test, fdb_error_t code);
fdb_error_t fdb_select_api_version_impl(int runtime_version, int header_version);
int fdb_get_max_api_version(void);
#define fdb_select_api_version(v) fdb_select_api_version_impl(v, FDB_API_VERSION)

fdb_error_t fdb_network_set_option(FDBNetworkOption option, uint8_t const* value, int value_length);
fdb_error_t fdb_setup_network(void);
fdb_error_t fdb_run_network(void);
fdb_error_t fdb_stop_network(void);

/* Futures. */
void fdb_future_cancel(FDBFuture* f);
void fdb_future_release_memory(FDBFuture* f);
void fdb_future_destroy(FDBFuture* f);
fdb_error_t fdb_future_block_until_ready(FDBFuture* f);
fdb_bool_t fdb_future_is_ready(FDBFuture* f);
fdb_error_t fdb_future_set_callback(FDBFuture* f, FDBCallback callback, void* callback_parameter);
fdb_error_t fdb_future_get_error(FDBFuture* f);
fdb_error_t fdb_future_get_int64(FDBFuture* f, int64_t* out);
fdb_error_t fdb_future_get_key(FDBFuture* f, uint8_t const** out_key, int* out_key_length);
fdb_error_t fdb_future_get_value(FDBFuture* f, fdb_bool_t* out_present, uint8_t const** out_value,
                                 int* out_value_length);
fdb_error_t fdb_future_get_keyvalue_array(FDBFuture* f, FDBKeyValue const** out_kv, int* out_count,
                                          fdb_bool_t* out_more);
fdb_error_t fdb_future_get_key_array(FDBFuture* f, FDBKey const** out_key_array, int* out_count);
fdb_error_t fdb_future_get_string_array(FDBFuture* f, const char*** out_strings, int* out_count);

/* Databases and tenants. */
fdb_error_t fdb_create_database(const char* cluster_file_path, FDBDatabase** out_database);
fdb_error_t fdb_create_database_from_connection_string(const char* connection_string,
                                                       FDBDatabase** out_database);
void fdb_database_destroy(FDBDatabase* d);
fdb_error_t fdb_database_set_option(FDBDatabase* d, FDBDatabaseOption option, uint8_t const* value,
                                    int value_length);
fdb_error_t fdb_database_create_transaction(FDBDatabase* d, FDBTransaction** out_transaction);
fdb_error_t fdb_database_open_tenant(FDBDatabase* d, uint8_t const* tenant_name, int tenant_name_length,
                                     FDBTenant** out_tenant);
FDBFuture* fdb_database_reboot_worker(FDBDatabase* db, uint8_t const* address, int address_length,
                                      fdb_bool_t check, int duration);
FDBFuture* fdb_database_get_client_status(FDBDatabase* db);
fdb_error_t fdb_tenant_create_transaction(FDBTenant* tenant, FDBTransaction** out_transaction);
void fdb_tenant_destroy(FDBTenant* tenant);

/* Transactions. */
void fdb_transaction_destroy(FDBTransaction* tr);
void fdb_transaction_cancel(FDBTransaction* tr);
void fdb_transaction_reset(FDBTransaction* tr);
fdb_error_t fdb_transaction_set_option(FDBTransaction* tr, FDBTransactionOption option, uint8_t const* value,
                                       int value_length);
void fdb_transaction_set_read_version(FDBTransaction* tr, int64_t version);
FDBFuture* fdb_transaction_get_read_version(FDBTransaction* tr);
FDBFuture* fdb_transaction_get(FDBTransaction* tr, uint8_t const* key_name, int key_name_length,
                               fdb_bool_t snapshot);
FDBFuture* fdb_transaction_get_key(FDBTransaction* tr, uint8_t const* key_name, int key_name_length,
                                   fdb_bool_t or_equal, int offset, fdb_bool_t snapshot);
FDBFuture* fdb_transaction_get_addresses_for_key(FDBTransaction* tr, uint8_t const* key_name,
                                                 int key_name_length);
FDBFuture* fdb_transaction_get_range(FDBTransaction* tr, uint8_t const* begin_key_name, int begin_key_name_length,
                                     fdb_bool_t begin_or_equal, int begin_offset, uint8_t const* end_key_name,
                                     int end_key_name_length, fdb_bool_t end_or_equal, int end_offset, int limit,
                                     int target_bytes, FDBStreamingMode mode, int iteration, fdb_bool_t snapshot,
                                     fdb_bool_t reverse);
void fdb_transaction_set(FDBTransaction* tr, uint8_t const* key_name, int key_name_length, uint8_t const* value,
                         int value_length);
void fdb_transaction_atomic_op(FDBTransaction* tr, uint8_t const* key_name, int key_name_length,
                               uint8_t const* param, int param_length, FDBMutationType operation_type);
void fdb_transaction_clear(FDBTransaction* tr, uint8_t const* key_name, int key_name_length);
void fdb_transaction_clear_range(FDBTransaction* tr, uint8_t const* begin_key_name, int begin_key_name_length,
                                 uint8_t const* end_key_name, int end_key_name_length);
FDBFuture* fdb_transaction_watch(FDBTransaction* tr, uint8_t const* key_name, int key_name_length);
FDBFuture* fdb_transaction_commit(FDBTransaction* tr);
fdb_error_t fdb_transaction_get_committed_version(FDBTransaction* tr, int64_t* out_version);
FDBFuture* fdb_transaction_get_approximate_size(FDBTransaction* tr);
FDBFuture* fdb_transaction_get_versionstamp(FDBTransaction* tr);
FDBFuture* fdb_transaction_on_error(FDBTransaction* tr, fdb_error_t error);
fdb_error_t fdb_transaction_add_conflict_range(FDBTransaction* tr, uint8_t const* begin_key_name,
                                               int begin_key_name_length, uint8_t const* end_key_name,
                                               int end_key_name_length, FDBConflictRangeType type);
FDBFuture* fdb_transaction_get_estimated_range_size_bytes(FDBTransaction* tr, uint8_t const* begin_key_name,
                                                          int begin_key_name_length, uint8_t const* end_key_name,
                                                          int end_key_name_length);
FDBFuture* fdb_transaction_get_range_split_points(FDBTransaction* tr, uint8_t const* begin_key_name,
                                                  int begin_key_name_length, uint8_t const* end_key_name,
                                                  int end_key_name_length, int64_t chunk_size);

#ifdef __cplusplus
}
#endif
#endif /* IDEMKV_FDB_C_H */
