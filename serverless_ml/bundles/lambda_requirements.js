'use strict';

// The pinned requirements `sls package` / `sls deploy` install into the Lambda package
// (serverless.yml: custom.pythonRequirements.fileName: ${file(./serverless_ml/bundles/lambda_requirements.js)}).
//
// The param requirementsFile when given; otherwise the model key's format decides, as core does
// (core/file_formats.py, case-insensitive): an .onnx model is served by onnxruntime without
// scikit-learn, and scikit-learn + onnxruntime together are over Lambda's 250 MB unzipped, so a
// single file cannot serve both. Serverless v3 variables have no string functions: taking the
// extension needs these few lines of JS.
//
// The param modelNeedsPandas=true (a model that takes its rows as a DataFrame: GET /model shows
// input_schema.layout "frame") picks requirements-pandas.txt, requirements.txt plus pandas. It is
// a param, not read from the model: the model is in S3, and often uploaded after the deploy.
// pandas is never installed otherwise: scikit-learn imports it whenever it is there, and every
// cold start would pay for it. An .onnx model never needs it.
//
// serverless-python-requirements installs nothing, silently, when its file does not exist; a
// function deployed that way answers 503 for every request, so a missing file fails here instead.

const fs = require('fs');
const path = require('path');

// serverless.yml sits two levels up (serverless_ml/bundles/); the plugin reads fileName from there
const SERVICE_DIR = path.resolve(__dirname, '..', '..');
const DEFAULT_FILE = 'aws_lambda/requirements.txt';
const BY_MODEL_EXTENSION = { '.onnx': 'aws_lambda/requirements-onnx.txt' };
const PANDAS_FILE = 'aws_lambda/requirements-pandas.txt';
// as core reads a boolean setting (core/settings.py); empty: false
const TRUE_WORDS = ['true', '1', 'yes', 'on'];
const FALSE_WORDS = ['false', '0', 'no', 'off', ''];

function fail(message) {
  const error = new Error(message);
  error.stack = error.message; // the framework prints the stack: the message is all there is to say
  return error;
}

function needsPandas(text) {
  const word = text.toLowerCase();
  if (TRUE_WORDS.includes(word)) return true;
  if (FALSE_WORDS.includes(word)) return false;
  throw fail(`modelNeedsPandas=${text} is not allowed; expected true or false (empty: false)`);
}

function requirementsFile(given, modelKey, pandas) {
  if (given) return given;
  const key = modelKey.toLowerCase();
  const extension = Object.keys(BY_MODEL_EXTENSION).find((suffix) => key.endsWith(suffix));
  if (extension && pandas) {
    throw fail(
      `modelNeedsPandas=true with modelKey=${modelKey}: an ${extension} model is served by onnxruntime ` +
        `from typed tensors, without scikit-learn or pandas; expected modelNeedsPandas=false for it ` +
        `(or requirementsFile=PATH to install a file of your own)`
    );
  }
  if (extension) return BY_MODEL_EXTENSION[extension];
  return pandas ? PANDAS_FILE : DEFAULT_FILE;
}

module.exports = async ({ resolveVariable }) => {
  const given = String((await resolveVariable('param:requirementsFile')) || '').trim();
  const modelKey = String((await resolveVariable('param:modelKey')) || '').trim();
  const pandas = needsPandas(String((await resolveVariable('param:modelNeedsPandas')) || '').trim());
  const fileName = requirementsFile(given, modelKey, pandas);
  const stat = fs.statSync(path.resolve(SERVICE_DIR, fileName), { throwIfNoEntry: false });
  if (!stat || !stat.isFile()) {
    const origin = given ? `requirementsFile=${given}` : `the default for modelKey=${modelKey}`;
    throw fail(
      `${origin}: ${fileName} is not a file in ${SERVICE_DIR}; expected a pip requirements file ` +
        `relative to serverless.yml, e.g. ${DEFAULT_FILE} (scikit-learn models), ${PANDAS_FILE} ` +
        `(models that take a DataFrame) or ${BY_MODEL_EXTENSION['.onnx']} (.onnx models)`
    );
  }
  return fileName;
};
