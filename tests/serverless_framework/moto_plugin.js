'use strict';

// Loaded only by test_deploy_moto.py, into its own copy of serverless.yml: `sls deploy` skips
// ValidateTemplate. moto's ValidateTemplate runs cfn-lint and fails on its first finding of any
// level, and the template carries warnings osls writes itself (W3005: a DependsOn that a GetAtt
// or Ref already implies, on the functions' roles and the HTTP API's routes), which AWS's own
// ValidateTemplate does not look at. test_template.py runs cfn-lint on the same template. And the
// endpoint print of serverless-step-functions, below.
class SkipValidateTemplateForMoto {
  constructor(serverless) {
    this.hooks = {
      initialize: () => {
        const deploy = serverless.pluginManager.plugins.find((plugin) => plugin.constructor.name === 'AwsDeploy');
        if (!deploy) throw new Error('moto_plugin.js: osls has no AwsDeploy plugin to patch');
        deploy.validateTemplate = async () => {};
        // serverless-step-functions prints the stack's endpoint after a deploy, reading
        // DescribeStacks' Outputs without a check; moto's answer here has no Outputs key, so the
        // print fails after the stack is deployed. Nothing of the stack depends on it.
        const stepFunctions = serverless.pluginManager.plugins.find(
          (plugin) => plugin.constructor.name === 'ServerlessStepFunctions');
        if (stepFunctions) stepFunctions.getEndpointInfo = async () => {};
      },
    };
  }
}

module.exports = SkipValidateTemplateForMoto;
