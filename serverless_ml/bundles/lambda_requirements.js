'use strict';

// The pinned requirements `sls package` / `sls deploy` install into the Lambda package
// (serverless.yml: custom.pythonRequirements.fileName: ${file(./serverless_ml/bundles/lambda_requirements.js)}).
//
// The param requirementsFile when given; otherwise the model key's format decides, as core does
// (core/model_formats.py, case-insensitive): an .onnx model is served by onnxruntime without
// scikit-learn, and scikit-learn + onnxruntime together are over Lambda's 250 MB unzipped, so a
// single file cannot serve both. Serverless v3 variables have no string functions: taking the
// extension needs these few lines of JS.
//
// serverless-python-requirements installs nothing, silently, when its file does not exist; a
// function deployed that way answers 503 for every request, so a missing file fails here instead.

const fs = require('fs');
const path = require('path');

// serverless.yml sits two levels up (serverless_ml/bundles/); the plugin reads fileName from there
const SERVICE_DIR = path.resolve(__dirname, '..', '..');
const DEFAULT_FILE = 'aws_lambda/requirements.txt';
const BY_MODEL_EXTENSION = { '.onnx': 'aws_lambda/requirements-onnx.txt' };

function requirementsFile(given, modelKey) {
  if (given) return given;
  const key = modelKey.toLowerCase();
  const extension = Object.keys(BY_MODEL_EXTENSION).find((suffix) => key.endsWith(suffix));
  return extension ? BY_MODEL_EXTENSION[extension] : DEFAULT_FILE;
}

module.exports = async ({ resolveVariable }) => {
  const given = String((await resolveVariable('param:requirementsFile')) || '').trim();
  const modelKey = String((await resolveVariable('param:modelKey')) || '').trim();
  const fileName = requirementsFile(given, modelKey);
  const stat = fs.statSync(path.resolve(SERVICE_DIR, fileName), { throwIfNoEntry: false });
  if (!stat || !stat.isFile()) {
    const origin = given ? `requirementsFile=${given}` : `the default for modelKey=${modelKey}`;
    const error = new Error(
      `${origin}: ${fileName} is not a file in ${SERVICE_DIR}; expected a pip requirements file ` +
        `relative to serverless.yml, e.g. ${DEFAULT_FILE} (scikit-learn models) or ` +
        `${BY_MODEL_EXTENSION['.onnx']} (.onnx models)`
    );
    error.stack = error.message; // the framework prints the stack: the message is all there is to say
    throw error;
  }
  return fileName;
};
