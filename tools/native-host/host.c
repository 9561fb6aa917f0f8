/*
 * A minimal C host for libonnxattention.so: proves the operators run in a process with no .NET runtime.
 *
 *   host LIBRARY MODEL INPUT_DIR OUTPUT_DIR
 *       Registers LIBRARY's operators (RegisterCustomOpsLibrary_V2), loads MODEL, reads every model input from
 *       INPUT_DIR/<input name>.tensor, runs once and writes every output to OUTPUT_DIR/<output name>.tensor.
 *   host --simulate-old-runtime LIBRARY
 *       Calls LIBRARY's RegisterCustomOps with an OrtApiBase that, like ONNX Runtime 1.23, has no OrtApi newer than
 *       version 23, and prints the status it returns.
 *
 * .tensor files: int32 element type (ONNXTensorElementDataType), int32 rank, int64 dims[rank], then the elements,
 * all little-endian as in memory. Any failure prints "error: <ORT status message>" on stderr and exits with 1.
 *
 * Build: gcc -std=c11 -O1 -I<ort include> host.c -L<dir with libonnxruntime.so and .so.1> -lonnxruntime -ldl
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxruntime_c_api.h"

static const OrtApi *ort;

static void fail(const char *fmt, const char *detail)
{
    fprintf(stderr, "error: ");
    fprintf(stderr, fmt, detail);
    fprintf(stderr, "\n");
    exit(1);
}

static void check(OrtStatus *status)
{
    if (status != NULL) {
        /* Printed before release: the message belongs to the status. */
        fprintf(stderr, "error: %s\n", ort->GetErrorMessage(status));
        ort->ReleaseStatus(status);
        exit(1);
    }
}

static size_t element_size(int type)
{
    switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return 4;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return 2;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return 8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return 4;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return 8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return 1;
    default: return 0;
    }
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 10;
    char *path = malloc(n);
    if (path == NULL) fail("%s", "out of memory");
    snprintf(path, n, "%s/%s.tensor", dir, name);
    return path;
}

static OrtValue *read_tensor(const char *path, OrtAllocator *allocator)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) fail("cannot open input file %s", path);
    int32_t header[2];
    if (fread(header, sizeof header, 1, f) != 1) fail("%s: truncated header", path);
    int32_t type = header[0], rank = header[1];
    size_t size = element_size(type);
    if (size == 0) fail("%s: unsupported element type", path);
    if (rank < 0 || rank > 16) fail("%s: bad rank", path);
    int64_t dims[16];
    size_t count = 1;
    if (rank > 0 && fread(dims, sizeof(int64_t), (size_t)rank, f) != (size_t)rank) fail("%s: truncated shape", path);
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) fail("%s: negative dimension", path);
        count *= (size_t)dims[i];
    }
    OrtValue *value = NULL;
    check(ort->CreateTensorAsOrtValue(allocator, dims, (size_t)rank, (ONNXTensorElementDataType)type, &value));
    void *data = NULL;
    check(ort->GetTensorMutableData(value, &data));
    if (count > 0 && fread(data, size, count, f) != count) fail("%s: fewer elements than the shape says", path);
    if (fgetc(f) != EOF) fail("%s: more elements than the shape says", path);
    fclose(f);
    return value;
}

static void write_tensor(const char *path, OrtValue *value)
{
    OrtTensorTypeAndShapeInfo *info = NULL;
    check(ort->GetTensorTypeAndShape(value, &info));
    ONNXTensorElementDataType type;
    size_t rank = 0, count = 0;
    check(ort->GetTensorElementType(info, &type));
    check(ort->GetDimensionsCount(info, &rank));
    if (rank > 16) fail("%s: rank above 16", path);
    int64_t dims[16];
    check(ort->GetDimensions(info, dims, rank));
    check(ort->GetTensorShapeElementCount(info, &count));
    ort->ReleaseTensorTypeAndShapeInfo(info);
    size_t size = element_size((int)type);
    if (size == 0) fail("%s: unsupported output element type", path);
    void *data = NULL;
    check(ort->GetTensorMutableData(value, &data));

    FILE *f = fopen(path, "wb");
    if (f == NULL) fail("cannot create output file %s", path);
    int32_t header[2] = {(int32_t)type, (int32_t)rank};
    int ok = fwrite(header, sizeof header, 1, f) == 1
        && (rank == 0 || fwrite(dims, sizeof(int64_t), rank, f) == rank)
        && (count == 0 || fwrite(data, size, count, f) == count);
    if (fclose(f) != 0 || !ok) fail("cannot write output file %s", path);
}

static int run_model(const char *library, const char *model, const char *input_dir, const char *output_dir)
{
    OrtEnv *env = NULL;
    check(ort->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "onnxattention-native-host", &env));
    OrtSessionOptions *options = NULL;
    check(ort->CreateSessionOptions(&options));
    check(ort->SetIntraOpNumThreads(options, 1));
    /* ORT dlopens the library, calls its RegisterCustomOps and closes it with the options. */
    check(ort->RegisterCustomOpsLibrary_V2(options, library));
    OrtSession *session = NULL;
    check(ort->CreateSession(env, model, options, &session));

    OrtAllocator *allocator = NULL;
    check(ort->GetAllocatorWithDefaultOptions(&allocator));
    size_t n_in = 0, n_out = 0;
    check(ort->SessionGetInputCount(session, &n_in));
    check(ort->SessionGetOutputCount(session, &n_out));
    char **in_names = calloc(n_in + 1, sizeof(char *));
    char **out_names = calloc(n_out + 1, sizeof(char *));
    OrtValue **inputs = calloc(n_in + 1, sizeof(OrtValue *));
    OrtValue **outputs = calloc(n_out + 1, sizeof(OrtValue *));
    if (!in_names || !out_names || !inputs || !outputs) fail("%s", "out of memory");
    for (size_t i = 0; i < n_in; i++) {
        check(ort->SessionGetInputName(session, i, allocator, &in_names[i]));
        char *path = join(input_dir, in_names[i]);
        inputs[i] = read_tensor(path, allocator);
        free(path);
    }
    for (size_t i = 0; i < n_out; i++) {
        check(ort->SessionGetOutputName(session, i, allocator, &out_names[i]));
    }

    check(ort->Run(session, NULL, (const char *const *)in_names, (const OrtValue *const *)inputs, n_in,
                   (const char *const *)out_names, n_out, outputs));

    for (size_t i = 0; i < n_out; i++) {
        char *path = join(output_dir, out_names[i]);
        write_tensor(path, outputs[i]);
        free(path);
        ort->ReleaseValue(outputs[i]);
        check(ort->AllocatorFree(allocator, out_names[i]));
    }
    for (size_t i = 0; i < n_in; i++) {
        ort->ReleaseValue(inputs[i]);
        check(ort->AllocatorFree(allocator, in_names[i]));
    }
    free(in_names);
    free(out_names);
    free(inputs);
    free(outputs);
    ort->ReleaseSession(session);
    ort->ReleaseSessionOptions(options);
    ort->ReleaseEnv(env);
    printf("ran %s: %zu inputs, %zu outputs (ONNX Runtime %s)\n", model, n_in, n_out, OrtGetApiBase()->GetVersionString());
    return 0;
}

/* ---- --simulate-old-runtime: an OrtApiBase whose newest OrtApi is version 23 (ONNX Runtime 1.23) ---- */

static const OrtApi *ORT_API_CALL old_get_api(uint32_t version)
{
    return version <= 23 ? OrtGetApiBase()->GetApi(version) : NULL;
}

static const char *ORT_API_CALL old_version_string(void)
{
    return "1.23.2";
}

static int simulate_old_runtime(const char *library)
{
    void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) fail("%s", dlerror());
    typedef OrtStatus *(*register_fn)(OrtSessionOptions *, const OrtApiBase *);
    register_fn register_custom_ops = (register_fn)dlsym(handle, "RegisterCustomOps");
    if (register_custom_ops == NULL) fail("%s", "RegisterCustomOps not exported");
    OrtSessionOptions *options = NULL;
    check(ort->CreateSessionOptions(&options));
    static const OrtApiBase old_base = {old_get_api, old_version_string};
    OrtStatus *status = register_custom_ops(options, &old_base);
    if (status == NULL) {
        fprintf(stderr, "RegisterCustomOps accepted a runtime without OrtApi 24\n");
        return 2;
    }
    check(status);
    return 0;
}

int main(int argc, char **argv)
{
    ort = OrtGetApiBase()->GetApi(ORT_API_VERSION);
    if (ort == NULL) {
        fprintf(stderr, "error: the loaded libonnxruntime does not provide OrtApi %d\n", ORT_API_VERSION);
        return 1;
    }
    if (argc == 3 && strcmp(argv[1], "--simulate-old-runtime") == 0) {
        return simulate_old_runtime(argv[2]);
    }
    if (argc != 5) {
        fprintf(stderr, "usage: %s LIBRARY MODEL INPUT_DIR OUTPUT_DIR\n       %s --simulate-old-runtime LIBRARY\n",
                argv[0], argv[0]);
        return 2;
    }
    return run_model(argv[1], argv[2], argv[3], argv[4]);
}
