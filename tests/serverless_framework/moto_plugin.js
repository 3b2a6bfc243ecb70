'use strict';

// Loaded only by test_deploy_moto.py, into its own copy of serverless.yml: `sls deploy` skips
// ValidateTemplate. moto's ValidateTemplate runs cfn-lint and fails on its first finding of any
// level, and the template carries warnings osls writes itself (W3005: a DependsOn that a GetAtt
// or Ref already implies, on the functions' roles and the HTTP API's routes), which AWS's own
// ValidateTemplate does not look at. test_template.py runs cfn-lint on the same template.
class SkipValidateTemplateForMoto {
  constructor(serverless) {
    this.hooks = {
      initialize: () => {
        const deploy = serverless.pluginManager.plugins.find((plugin) => plugin.constructor.name === 'AwsDeploy');
        if (!deploy) throw new Error('moto_plugin.js: osls has no AwsDeploy plugin to patch');
        deploy.validateTemplate = async () => {};
      },
    };
  }
}

module.exports = SkipValidateTemplateForMoto;
